/** Small shared helpers for showing times and statuses. */
import { useEffect, useState } from 'preact/hooks';

/** 75 → "1m 15s". */
export function formatSeconds(seconds: number): string {
  const whole = Math.max(0, Math.round(seconds));
  const minutes = Math.floor(whole / 60);
  return minutes ? `${minutes}m ${whole % 60}s` : `${whole}s`;
}

export const secondsBetween = (from: string, to: string | number) => (new Date(to).getTime() - new Date(from).getTime()) / 1000;

/** The current time, renewed every second: for clocks that tick. */
export function useNow(): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  return now;
}

export function ProgressBar({ value }: { value: number }) {
  return (
    <div class="progress" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={value} aria-label="progress">
      <div class="progress-fill" style={{ width: `${value}%` }} />
    </div>
  );
}
