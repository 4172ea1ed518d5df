// ID3v2 frames of a timed-metadata tag, as the player reports them
// (MetadataEventType.ID3): key is the frame id, info the description (TXXX)
// or owner identifier (PRIV), data the text or the private bytes.
export interface ID3Frame {
  key: string;
  info: string;
  data: string | ArrayBuffer;
}

const utf8 = new TextDecoder();

function syncsafe(b: Uint8Array, at: number): number {
  return ((b[at] & 0x7f) << 21) | ((b[at + 1] & 0x7f) << 14) | ((b[at + 2] & 0x7f) << 7) | (b[at + 3] & 0x7f);
}

// decodeText reads an ID3 text field of the given encoding (0 Latin-1,
// 3 UTF-8; UTF-16 is read as UTF-16).
function decodeText(enc: number, b: Uint8Array): string {
  if (enc === 1 || enc === 2) return new TextDecoder(enc === 2 ? 'utf-16be' : 'utf-16').decode(b);
  return utf8.decode(b);
}

function cut(b: Uint8Array): [Uint8Array, Uint8Array] {
  const i = b.indexOf(0);
  return i < 0 ? [b, new Uint8Array(0)] : [b.subarray(0, i), b.subarray(i + 1)];
}

// parseID3 reads every frame of the ID3v2 tags in data; malformed input
// yields what could be read, never an exception.
export function parseID3(data: Uint8Array): ID3Frame[] {
  const out: ID3Frame[] = [];
  let at = 0;
  while (at + 10 <= data.length && data[at] === 0x49 && data[at + 1] === 0x44 && data[at + 2] === 0x33) {
    const version = data[at + 3];
    const end = Math.min(data.length, at + 10 + syncsafe(data, at + 6));
    let p = at + 10;
    while (p + 10 <= end && data[p] !== 0) {
      const key = String.fromCharCode(data[p], data[p + 1], data[p + 2], data[p + 3]);
      const size = version >= 4 ? syncsafe(data, p + 4) : (data[p + 4] << 24) | (data[p + 5] << 16) | (data[p + 6] << 8) | data[p + 7];
      const body = data.subarray(p + 10, Math.min(end, p + 10 + size));
      p += 10 + size;
      if (key === 'PRIV') {
        const [owner, rest] = cut(body);
        out.push({ key, info: utf8.decode(owner), data: rest.slice().buffer });
      } else if (key === 'TXXX' && body.length > 0) {
        const [desc, value] = cut(body.subarray(1));
        out.push({ key, info: decodeText(body[0], desc), data: decodeText(body[0], value) });
      } else if (key[0] === 'T' && body.length > 0) {
        out.push({ key, info: '', data: decodeText(body[0], body.subarray(1)) });
      }
    }
    at = end;
  }
  return out;
}
