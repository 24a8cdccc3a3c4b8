// Numbers as people read them: sizes, speeds and durations.

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

export function bytes(count) {
  let value = Number(count) || 0;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${UNITS[unit]}`;
}

export function bytesOf(done, total) {
  return total > 0 ? `${bytes(done)} / ${bytes(total)}` : bytes(done);
}

export function speed(bytesPerSecond) {
  return bytesPerSecond > 0 ? `${bytes(bytesPerSecond)}/s` : "–";
}

export function duration(seconds) {
  if (!(seconds > 0)) {
    return "–";
  }
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const mm = String(m).padStart(h > 0 ? 2 : 1, "0");
  return h > 0 ? `${h}:${mm}:${String(s).padStart(2, "0")}` : `${mm}:${String(s).padStart(2, "0")}`;
}

export function percent(progress) {
  return `${Math.floor(Math.max(0, Math.min(1, Number(progress) || 0)) * 100)}%`;
}

export function time(iso) {
  return iso ? new Date(iso).toLocaleString() : "–";
}
