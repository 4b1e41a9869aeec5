'use client';
import type { LiveUpdate } from '@headbench/spec';
import { useEffect, useRef, useState } from 'react';
import { io } from 'socket.io-client';
import { browserApi } from './browser';

export type LiveState = 'connecting' | 'live' | 'down';

/**
 * Subscribes to socket.io rooms on the API's /live namespace. `onResync` runs after every (re)subscribe so
 * the page can fetch what it missed with runs.metrics `sinceStep`. The page never holds the API token:
 * each (re)connect asks this app's proxy for a short-lived read-only live ticket (live.ticket).
 */
export function useLive(opts: {
  apiUrl: string;
  rooms: string[];
  onUpdate: (u: LiveUpdate) => void;
  /** Just before a (re)subscribe: no update of the new subscription has arrived yet. */
  onSubscribing?: () => void;
  onResync: () => void;
}): LiveState {
  const [state, setState] = useState<LiveState>('connecting');
  const handlers = useRef(opts);
  handlers.current = opts;
  const roomKey = opts.rooms.join(',');

  useEffect(() => {
    const rooms = roomKey.split(',').filter(Boolean);
    const socket = io(`${opts.apiUrl}/live`, {
      auth: (cb) => {
        browserApi()
          .live.ticket.query()
          .then(
            (t) => cb({ ticket: t.ticket }),
            () => cb({ ticket: '' }), // refused by the API: connect_error, retried on the next reconnect
          );
      },
      transports: ['websocket'],
      reconnectionDelayMax: 5000,
    });
    socket.on('connect', () => {
      handlers.current.onSubscribing?.();
      socket.emit('subscribe', { rooms }, (ack: { ok: boolean } | undefined) => {
        if (!ack?.ok) {
          setState('down');
          return;
        }
        setState('live');
        // Also after the first connect: the page's data was read before this subscription existed, and
        // whatever happened in between (a run finishing) came as no update.
        handlers.current.onResync();
      });
    });
    socket.on('disconnect', () => setState('down'));
    // A refused handshake (ticket expired or not fetched: the API or this app restarting) is not retried
    // by socket.io itself; try again with a fresh ticket.
    let retry: ReturnType<typeof setTimeout> | undefined;
    socket.on('connect_error', () => {
      setState('down');
      if (!socket.active) retry = setTimeout(() => socket.connect(), 3000);
    });
    socket.on('update', (u: LiveUpdate) => handlers.current.onUpdate(u));
    return () => {
      clearTimeout(retry);
      socket.close();
    };
  }, [opts.apiUrl, roomKey]);
  return state;
}

export function LiveBanner({ state }: { state: LiveState }) {
  if (state === 'live') return null;
  return (
    <div className="banner warn" role="status" data-live={state}>
      {state === 'connecting'
        ? 'Connecting to live updates…'
        : 'Live updates are down — reconnecting. Charts show the last data received; missed points are fetched on reconnect.'}
    </div>
  );
}
