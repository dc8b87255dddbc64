// Kubernetes quantities ("500m", "4Gi", "24684084Ki", "1e3") as numbers, and back as
// short human text. Keep in sync with cnai.core.quantity (the server's parser).

const SUFFIXES = {
  n: 1e-9, u: 1e-6, m: 1e-3, "": 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};
const PATTERN = /^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

/** The quantity's value (cores for cpu, bytes for memory); NaN if it does not parse. */
export function parseQuantity(value) {
  if (typeof value === "number") return value;
  if (value === undefined || value === null || value === "") return 0;
  const match = PATTERN.exec(String(value).trim());
  if (!match) return NaN;
  return Number(match[1]) * SUFFIXES[match[2] || ""];
}

const BYTES = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

function trimmed(x) {
  return Number.isInteger(x) ? String(x) : x.toFixed(x < 10 ? 2 : 1).replace(/\.?0+$/, "");
}

/** Short text for ``amount`` of resource ``name``: bytes for memory, plain otherwise. */
export function formatAmount(name, amount) {
  if (Number.isNaN(amount)) return "?";
  if (name === "memory" || name.endsWith("storage")) {
    let i = 0;
    let x = amount;
    while (Math.abs(x) >= 1024 && i < BYTES.length - 1) {
      x /= 1024;
      i += 1;
    }
    return `${trimmed(x)} ${BYTES[i]}`;
  }
  return trimmed(Math.round(amount * 1000) / 1000);
}

/** Sum of ``requests`` maps: {cpu: "1", memory: "2Gi"} -> {cpu: 1, memory: 2147483648}. */
export function addRequests(total, requests) {
  for (const [name, value] of Object.entries(requests || {})) {
    total[name] = (total[name] || 0) + parseQuantity(value);
  }
  return total;
}
