//! The bridge between segments and the column encodings: one series'
//! times and values in, two encoded columns out, and back.
//!
//! TEMPORARY: plain varint deltas until the encoding module lands.

use crate::storage::encoding::DecodeError;

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn get_varint(buf: &[u8], pos: &mut usize) -> Result<u64, DecodeError> {
    let mut v = 0u64;
    for shift in (0..70).step_by(7) {
        let b = *buf
            .get(*pos)
            .ok_or(DecodeError("varint runs past the end"))?;
        *pos += 1;
        if shift == 63 && b > 1 {
            return Err(DecodeError("varint overflows 64 bits"));
        }
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err(DecodeError("varint longer than 10 bytes"))
}

pub(crate) fn encode_times(times: &[i64], out: &mut Vec<u8>) {
    for w in times.windows(2) {
        put_varint(out, w[1].wrapping_sub(w[0]) as u64);
    }
}

pub(crate) fn decode_times(
    col: &[u8],
    t_min: i64,
    n: usize,
    out: &mut Vec<i64>,
) -> Result<(), DecodeError> {
    let mut pos = 0;
    let mut t = t_min;
    out.push(t);
    for _ in 1..n {
        t = t.wrapping_add(get_varint(col, &mut pos)? as i64);
        out.push(t);
    }
    if pos != col.len() {
        return Err(DecodeError("trailing bytes"));
    }
    Ok(())
}

pub(crate) fn encode_values(values: &[u64], out: &mut Vec<u8>) {
    let mut prev = 0u64;
    for &v in values {
        let d = v.wrapping_sub(prev) as i64;
        put_varint(out, ((d << 1) ^ (d >> 63)) as u64);
        prev = v;
    }
}

pub(crate) fn decode_values(col: &[u8], n: usize, out: &mut Vec<u64>) -> Result<(), DecodeError> {
    let mut pos = 0;
    let mut v = 0u64;
    for _ in 0..n {
        let z = get_varint(col, &mut pos)?;
        let d = ((z >> 1) as i64) ^ -((z & 1) as i64);
        v = v.wrapping_add(d as u64);
        out.push(v);
    }
    if pos != col.len() {
        return Err(DecodeError("trailing bytes"));
    }
    Ok(())
}
