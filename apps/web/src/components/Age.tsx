/** "3 min ago" from an ISO time (rendered on the server at request time). */
export function Age({ iso }: { iso: string }) {
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  const text =
    s < 60
      ? `${Math.round(s)} s ago`
      : s < 3600
        ? `${Math.round(s / 60)} min ago`
        : s < 86400
          ? `${Math.round(s / 3600)} h ago`
          : `${Math.round(s / 86400)} d ago`;
  return (
    <time dateTime={iso} title={iso}>
      {text}
    </time>
  );
}
