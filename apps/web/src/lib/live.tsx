'use client';
import type { LiveUpdate } from '@headbench/spec';
import { useEffect, useRef, useState } from 'react';
import { io } from 'socket.io-client';

export type LiveState = 'connecting' | 'live' | 'down';

/**
 * Subscribes to socket.io rooms on the API's /live namespace. `onResync` runs after every (re)subscribe so
 * the page can fetch what it missed with runs.metrics `sinceStep`.
 */
export function useLive(opts: {
  apiUrl: string;
  token: string;
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
      auth: { token: opts.token },
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
    socket.on('connect_error', () => setState('down'));
    socket.on('update', (u: LiveUpdate) => handlers.current.onUpdate(u));
    return () => {
      socket.close();
    };
  }, [opts.apiUrl, opts.token, roomKey]);
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
