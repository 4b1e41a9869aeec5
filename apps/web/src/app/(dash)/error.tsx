'use client';

export default function DashError({
  error,
  reset,
}: {
  error: Error & { digest?: string };
  reset: () => void;
}) {
  return (
    <div className="banner err" role="alert">
      <p>Something went wrong loading this page: {error.message || 'unknown error'}</p>
      <button type="button" onClick={reset}>
        Try again
      </button>
    </div>
  );
}
