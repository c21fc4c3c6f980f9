//! A reduced-size luma decoder for baseline JPEGs: the picture at 1/2, 1/4
//! or 1/8 of its size, straight from the DCT coefficients.
//!
//! The detector works on a picture about 240 px wide, so decoding a 720p
//! frame in full (every coefficient, an 8x8 inverse DCT per block, the
//! chroma) and then averaging it down throws most of the work away. An 8x8
//! block's DC coefficient is the block's mean, so 1/8 scale needs no inverse
//! DCT at all; 1/4 and 1/2 scale need only the block's lowest 2x2 or 4x4
//! frequencies, through an inverse DCT of that size (what libjpeg's scaled
//! decoding does). The Huffman stream must still be walked to its end, but
//! the coefficients that are not needed, and every chroma coefficient, are
//! skipped without being stored. No Rust JPEG crate in use decodes this way:
//! zune-jpeg always decodes in full, and jpeg-decoder's scaled decode was
//! measured no faster than zune-jpeg's full one on the bench's frames.
//!
//! Only what cameras send is handled: baseline or extended sequential
//! Huffman coding, 8-bit samples, one or three components, the first scan
//! holding the luma. Anything else (progressive, arithmetic coding, 12-bit,
//! CMYK, luma subsampled below chroma) is [`ReducedError::Unsupported`], and
//! the caller falls back to a full decode. Hostile input is bounded: sides
//! are capped at [`MAX_SIDE`], every index is checked, and a stream that
//! ends early is [`ReducedError::Corrupt`], never a panic.

/// Largest side accepted, as for the full decode: it bounds the output
/// buffer for a hostile or broken source.
pub const MAX_SIDE: usize = 8192;

/// Why the reduced decoder did not produce a picture.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReducedError {
    /// A valid JPEG this decoder does not handle: decode it in full.
    #[error("unsupported JPEG: {0}")]
    Unsupported(&'static str),
    /// Not a well-formed JPEG.
    #[error("corrupt JPEG: {0}")]
    Corrupt(&'static str),
}

use ReducedError::{Corrupt, Unsupported};

/// Natural (row-major) index of each zigzag position.
const ZIGZAG: [u8; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// How many zigzag positions cover the top-left `n`x`n` coefficients.
fn needed(n: usize) -> usize {
    match n {
        1 => 1,
        2 => 5,
        _ => 25,
    }
}

/// The reduction, as a power of two (1 = 1/2, 2 = 1/4, 3 = 1/8), that keeps
/// a picture `width` wide at least `min_width` wide; 0 when even 1/2 would
/// be narrower.
pub fn reduction(width: usize, min_width: usize) -> u32 {
    (1..=3)
        .rev()
        .find(|&s| width.div_ceil(1 << s) >= min_width.max(1))
        .unwrap_or(0)
}

/// The size of a `width`x`height` picture reduced by 2^`shift`.
pub fn reduced_size(width: usize, height: usize, shift: u32) -> (usize, usize) {
    (width.div_ceil(1 << shift), height.div_ceil(1 << shift))
}

/// One component of the frame header.
#[derive(Debug, Clone, Copy, Default)]
struct Component {
    id: u8,
    h: usize,
    v: usize,
    quant: usize,
}

/// A Huffman table: a 9-bit lookahead for the common short codes, and the
/// canonical code ranges for the rest.
#[derive(Clone)]
struct Huffman {
    /// Indexed by the next 9 bits: (code length, symbol); length 0 = longer.
    fast: [(u8, u8); 1 << FAST_BITS],
    /// For AC coefficients that are skipped, indexed the same way: (bits of
    /// the code and its value, positions to advance); 0 bits = longer code.
    /// An end of block advances by [`END_OF_BLOCK`].
    skip: [(u8, u8); 1 << FAST_BITS],
    /// Largest code of each length (1-16), -1 when none.
    max_code: [i32; 17],
    /// Index into `symbols` of the first code of each length, minus that code.
    offset: [i32; 17],
    symbols: Vec<u8>,
}

const FAST_BITS: u32 = 9;

/// The advance of an end-of-block symbol in [`Huffman::skip`]: past any
/// position, and told apart from a run past the block.
const END_OF_BLOCK: usize = 128;

/// The positions an AC symbol advances: its run and itself, 16 for a run
/// of zeros, [`END_OF_BLOCK`] for the end of the block.
fn advance(symbol: u8) -> usize {
    match (symbol >> 4, symbol & 15) {
        (15, 0) => 16,
        (_, 0) => END_OF_BLOCK,
        (run, _) => usize::from(run) + 1,
    }
}

impl Huffman {
    fn new(counts: &[u8; 16], symbols: &[u8]) -> Result<Self, ReducedError> {
        let mut t = Huffman {
            fast: [(0, 0); 1 << FAST_BITS],
            skip: [(0, 0); 1 << FAST_BITS],
            max_code: [-1; 17],
            offset: [0; 17],
            symbols: symbols.to_vec(),
        };
        let mut code: u32 = 0;
        let mut k = 0usize;
        for len in 1..=16u32 {
            let count = usize::from(counts[len as usize - 1]);
            t.offset[len as usize] = k as i32 - code as i32;
            for _ in 0..count {
                if code >= 1 << len {
                    return Err(Corrupt("Huffman code overflows"));
                }
                if len <= FAST_BITS {
                    let shift = FAST_BITS - len;
                    let first = (code << shift) as usize;
                    for slot in &mut t.fast[first..first + (1 << shift)] {
                        *slot = (len as u8, symbols[k]);
                    }
                }
                code += 1;
                k += 1;
            }
            if count > 0 {
                t.max_code[len as usize] = code as i32 - 1;
            }
            code <<= 1;
        }
        for (skip, &(len, sym)) in t.skip.iter_mut().zip(&t.fast) {
            if len > 0 {
                // At most 16 + 15 bits, and END_OF_BLOCK fits in a byte.
                *skip = (len + (sym & 15), advance(sym) as u8);
            }
        }
        Ok(t)
    }
}

/// Reads the entropy-coded bits, taking out stuffed zero bytes. At a marker
/// it feeds zeros and counts them, so running past the data is detected by
/// [`Bits::overran`] instead of reading out of bounds.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u64,
    count: u32,
    /// Zero bytes fed after a marker or the end of the data.
    padding: u32,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8], pos: usize) -> Self {
        Bits {
            data,
            pos,
            acc: 0,
            count: 0,
            padding: 0,
        }
    }

    /// Tops the accumulator up to at least 56 bits (and at most 63, so the
    /// fast path's shift stays in range). Bits below the count are always
    /// the stream's next bits or zero.
    #[inline(always)]
    fn refill(&mut self) {
        // Fast path, without a branch on the bit count: the next 8 bytes
        // hold no 0xFF (no stuffing, no marker), so as many whole bytes as
        // fit go in at once (none when the accumulator is full already).
        if let Some(next) = self.data.get(self.pos..self.pos + 8) {
            let word = u64::from_be_bytes(next.try_into().unwrap_or([0xFF; 8]));
            let inverted = !word;
            let has_ff =
                inverted.wrapping_sub(0x0101_0101_0101_0101) & !inverted & 0x8080_8080_8080_8080;
            if has_ff == 0 {
                self.acc |= word >> self.count;
                self.pos += ((63 - self.count) >> 3) as usize;
                self.count |= 56;
                return;
            }
        }
        while self.count <= 55 {
            let byte = match self.data.get(self.pos) {
                Some(&0xFF) if self.data.get(self.pos + 1) == Some(&0) => {
                    self.pos += 2;
                    0xFF
                }
                Some(&0xFF) | None => {
                    // A marker (not consumed) or the end: zeros from here.
                    self.padding += 1;
                    0
                }
                Some(&b) => {
                    self.pos += 1;
                    b
                }
            };
            self.acc |= u64::from(byte) << (56 - self.count);
            self.count += 8;
        }
    }

    /// Whether bits fed as padding were consumed: the data ended too early.
    fn overran(&self) -> bool {
        u64::from(self.padding) * 8 > u64::from(self.count)
    }

    #[inline]
    fn consume(&mut self, n: u32) {
        self.acc <<= n;
        self.count -= n;
    }

    /// The next `n` (0-16) bits as an unsigned value.
    #[inline]
    fn take(&mut self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        self.refill();
        let v = (self.acc >> (64 - n)) as u32;
        self.consume(n);
        v
    }

    /// The next Huffman symbol of `t`.
    #[inline]
    fn symbol(&mut self, t: &Huffman) -> Result<u8, ReducedError> {
        self.refill();
        let (len, sym) = self.lookup(t)?;
        self.consume(len);
        Ok(sym)
    }

    /// The next symbol of `t` and the `symbol & 15` bits after it, as
    /// (symbol, bits): one refill and one shift for a coefficient.
    #[inline(always)]
    fn coefficient(&mut self, t: &Huffman) -> Result<(u8, u32), ReducedError> {
        self.refill();
        let (len, sym) = self.lookup(t)?;
        let size = u32::from(sym & 15);
        // len <= 16 and size <= 15, within the 56 bits refilled.
        let value = if size == 0 {
            0
        } else {
            ((self.acc << len) >> (64 - size)) as u32
        };
        self.consume(len + size);
        Ok((sym, value))
    }

    /// The code length and symbol of `t` at the front of the (refilled)
    /// accumulator, without consuming them.
    #[inline(always)]
    fn lookup(&self, t: &Huffman) -> Result<(u32, u8), ReducedError> {
        let (len, sym) = t.fast[(self.acc >> (64 - FAST_BITS)) as usize];
        if len > 0 {
            return Ok((u32::from(len), sym));
        }
        self.lookup_long(t)
    }

    /// [`Bits::lookup`] for codes longer than the lookahead.
    #[cold]
    #[inline(never)]
    fn lookup_long(&self, t: &Huffman) -> Result<(u32, u8), ReducedError> {
        for len in FAST_BITS + 1..=16 {
            let code = (self.acc >> (64 - len)) as i32;
            if code <= t.max_code[len as usize] {
                let i = t.offset[len as usize] + code;
                return match t.symbols.get(i as usize) {
                    Some(&sym) => Ok((len, sym)),
                    None => Err(Corrupt("bad Huffman code")),
                };
            }
        }
        Err(Corrupt("bad Huffman code"))
    }

    /// Skips a block's AC coefficients from zigzag position `k` to the end
    /// of the block.
    #[inline(always)]
    fn skip_ac(&mut self, t: &Huffman, mut k: usize) -> Result<(), ReducedError> {
        while k < 64 {
            self.refill();
            let (bits, step) = t.skip[(self.acc >> (64 - FAST_BITS)) as usize];
            if bits > 0 {
                self.consume(u32::from(bits));
                k += usize::from(step);
            } else {
                let (sym, _) = self.coefficient(t)?;
                k += advance(sym);
            }
        }
        if k > 64 && k < END_OF_BLOCK {
            return Err(Corrupt("coefficient past the block"));
        }
        Ok(())
    }

    /// Skips to the byte after the next restart marker.
    fn restart(&mut self) -> Result<(), ReducedError> {
        self.acc = 0;
        self.count = 0;
        self.padding = 0;
        while self.data.get(self.pos) == Some(&0xFF) && self.data.get(self.pos + 1) == Some(&0xFF) {
            self.pos += 1;
        }
        match (self.data.get(self.pos), self.data.get(self.pos + 1)) {
            (Some(0xFF), Some(0xD0..=0xD7)) => {
                self.pos += 2;
                Ok(())
            }
            _ => Err(Corrupt("restart marker missing")),
        }
    }
}

/// The value of an `s`-bit coefficient (JPEG's EXTEND).
#[inline]
fn extend(v: u32, s: u32) -> i32 {
    if s == 0 {
        0
    } else if v < 1 << (s - 1) {
        v as i32 - (1 << s) + 1
    } else {
        v as i32
    }
}

/// Everything read from the headers before the first scan.
struct Frame {
    width: usize,
    height: usize,
    components: Vec<Component>,
    quant: [[u16; 64]; 4],
    dc: [Option<Huffman>; 4],
    ac: [Option<Huffman>; 4],
    restart_interval: usize,
}

/// Big-endian u16 at `pos`.
fn be16(data: &[u8], pos: usize) -> Result<usize, ReducedError> {
    match data.get(pos..pos + 2) {
        Some(b) => Ok(usize::from(b[0]) << 8 | usize::from(b[1])),
        None => Err(Corrupt("truncated header")),
    }
}

/// Decodes `jpeg`'s luma reduced so it is at least `min_width` wide (by 2,
/// 4 or 8, see [`reduction`]) into `out`; returns its width and height.
/// Pictures that cannot be reduced (narrower than twice `min_width`) are
/// [`ReducedError::Unsupported`].
pub fn decode_reduced_luma(
    jpeg: &[u8],
    min_width: usize,
    out: &mut Vec<u8>,
) -> Result<(usize, usize), ReducedError> {
    if jpeg.get(..2) != Some(&[0xFF, 0xD8]) {
        return Err(Corrupt("no start of image"));
    }
    let mut frame = Frame {
        width: 0,
        height: 0,
        components: Vec::new(),
        quant: [[0; 64]; 4],
        dc: [None, None, None, None],
        ac: [None, None, None, None],
        restart_interval: 0,
    };
    let mut pos = 2;
    loop {
        // A marker: 0xFF, any fill 0xFFs, then its code.
        if jpeg.get(pos) != Some(&0xFF) {
            return Err(Corrupt("marker expected"));
        }
        while jpeg.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let code = *jpeg.get(pos).ok_or(Corrupt("truncated header"))?;
        pos += 1;
        if matches!(code, 0x01 | 0xD0..=0xD7) {
            continue;
        }
        let len = be16(jpeg, pos)?;
        if len < 2 {
            return Err(Corrupt("bad segment length"));
        }
        let body = jpeg
            .get(pos + 2..pos + len)
            .ok_or(Corrupt("truncated segment"))?;
        match code {
            0xC0 | 0xC1 => read_sof(body, &mut frame)?,
            0xC2 => return Err(Unsupported("progressive")),
            0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                return Err(Unsupported("lossless, hierarchical or arithmetic"))
            }
            0xC4 => read_dht(body, &mut frame)?,
            0xDB => read_dqt(body, &mut frame)?,
            0xDD => frame.restart_interval = be16(body, 0)?,
            0xDA => return decode_scan(jpeg, pos + len, body, &frame, min_width, out),
            0xD8 | 0xD9 => return Err(Corrupt("no scan")),
            _ => {} // APPn, COM and the like.
        }
        pos += len;
    }
}

fn read_sof(body: &[u8], frame: &mut Frame) -> Result<(), ReducedError> {
    if body.first() != Some(&8) {
        return Err(Unsupported("not 8-bit"));
    }
    frame.height = be16(body, 1)?;
    frame.width = be16(body, 3)?;
    if frame.height == 0 {
        return Err(Unsupported("height in a DNL marker"));
    }
    if frame.width == 0 || frame.width > MAX_SIDE || frame.height > MAX_SIDE {
        return Err(Corrupt("bad size"));
    }
    let n = usize::from(*body.get(5).ok_or(Corrupt("truncated header"))?);
    if n != 1 && n != 3 {
        return Err(Unsupported("not gray or YCbCr"));
    }
    frame.components.clear();
    for i in 0..n {
        let c = body
            .get(6 + 3 * i..9 + 3 * i)
            .ok_or(Corrupt("truncated header"))?;
        let (h, v) = (usize::from(c[1] >> 4), usize::from(c[1] & 15));
        if !(1..=4).contains(&h) || !(1..=4).contains(&v) || c[2] > 3 {
            return Err(Corrupt("bad component"));
        }
        frame.components.push(Component {
            id: c[0],
            h,
            v,
            quant: usize::from(c[2]),
        });
    }
    let luma = frame.components[0];
    let (hmax, vmax) = frame
        .components
        .iter()
        .fold((0, 0), |(h, v), c| (h.max(c.h), v.max(c.v)));
    if (luma.h, luma.v) != (hmax, vmax) {
        return Err(Unsupported("luma subsampled"));
    }
    Ok(())
}

fn read_dht(mut body: &[u8], frame: &mut Frame) -> Result<(), ReducedError> {
    while let Some((&class_id, rest)) = body.split_first() {
        let counts: &[u8; 16] = rest
            .get(..16)
            .and_then(|c| c.try_into().ok())
            .ok_or(Corrupt("truncated DHT"))?;
        let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
        let symbols = rest.get(16..16 + total).ok_or(Corrupt("truncated DHT"))?;
        if total > 256 {
            return Err(Corrupt("DHT too long"));
        }
        let table = Some(Huffman::new(counts, symbols)?);
        let id = usize::from(class_id & 15);
        match (class_id >> 4, id) {
            (0, 0..=3) => frame.dc[id] = table,
            (1, 0..=3) => frame.ac[id] = table,
            _ => return Err(Corrupt("bad DHT")),
        }
        body = &rest[16 + total..];
    }
    Ok(())
}

fn read_dqt(mut body: &[u8], frame: &mut Frame) -> Result<(), ReducedError> {
    while let Some((&pq_tq, rest)) = body.split_first() {
        let id = usize::from(pq_tq & 15);
        let wide = pq_tq >> 4;
        let size = if wide == 0 { 64 } else { 128 };
        let values = rest.get(..size).ok_or(Corrupt("truncated DQT"))?;
        let table = frame.quant.get_mut(id).ok_or(Corrupt("bad DQT"))?;
        for (k, q) in table.iter_mut().enumerate() {
            *q = match wide {
                0 => u16::from(values[k]),
                1 => u16::from(values[2 * k]) << 8 | u16::from(values[2 * k + 1]),
                _ => return Err(Corrupt("bad DQT")),
            };
        }
        body = &rest[size..];
    }
    Ok(())
}

/// One component of the scan, with its tables.
struct ScanComponent<'f> {
    h: usize,
    v: usize,
    luma: bool,
    dc: &'f Huffman,
    ac: &'f Huffman,
    pred: i32,
}

/// Decodes the first scan (`header` is its SOS body, the data starts at
/// `start`).
fn decode_scan(
    jpeg: &[u8],
    start: usize,
    header: &[u8],
    frame: &Frame,
    min_width: usize,
    out: &mut Vec<u8>,
) -> Result<(usize, usize), ReducedError> {
    if frame.components.is_empty() {
        return Err(Corrupt("scan before frame header"));
    }
    let shift = reduction(frame.width, min_width);
    if shift == 0 {
        return Err(Unsupported("too small to reduce"));
    }
    let n = 8 >> shift;
    let ns = usize::from(*header.first().ok_or(Corrupt("truncated SOS"))?);
    if ns == 0 || ns > frame.components.len() {
        return Err(Corrupt("bad SOS"));
    }
    let mut scan = Vec::with_capacity(ns);
    for i in 0..ns {
        let s = header
            .get(1 + 2 * i..3 + 2 * i)
            .ok_or(Corrupt("truncated SOS"))?;
        let index = frame
            .components
            .iter()
            .position(|c| c.id == s[0])
            .ok_or(Corrupt("unknown scan component"))?;
        let c = frame.components[index];
        let dc = frame.dc[usize::from(s[1] >> 4) & 3].as_ref();
        let ac = frame.ac[usize::from(s[1] & 15) & 3].as_ref();
        let (Some(dc), Some(ac)) = (dc, ac) else {
            return Err(Corrupt("missing Huffman table"));
        };
        scan.push(ScanComponent {
            h: c.h,
            v: c.v,
            luma: index == 0,
            dc,
            ac,
            pred: 0,
        });
    }
    if !scan.iter().any(|c| c.luma) {
        return Err(Unsupported("first scan without luma"));
    }
    let luma = frame.components[0];
    let (hmax, vmax) = (luma.h, luma.v);
    // A scan of one component has one block per MCU, in its own grid.
    if ns == 1 {
        scan[0].h = 1;
        scan[0].v = 1;
    }
    let blocks_per_mcu: usize = scan.iter().map(|c| c.h * c.v).sum();
    if blocks_per_mcu > 10 {
        return Err(Corrupt("too many blocks per MCU"));
    }
    let (mcu_w, mcu_h) = if ns == 1 {
        (8, 8)
    } else {
        (8 * hmax, 8 * vmax)
    };
    let (mcus_x, mcus_y) = (frame.width.div_ceil(mcu_w), frame.height.div_ceil(mcu_h));
    let (w, h) = reduced_size(frame.width, frame.height, shift);
    out.clear();
    out.resize(w * h, 0);

    let quant = &frame.quant[luma.quant];
    let idct = Idct::new(n);
    let need = needed(n);
    let mut bits = Bits::new(jpeg, start);
    let mut pixels = [0u8; 16];
    let mut left = frame.restart_interval;
    for my in 0..mcus_y {
        for mx in 0..mcus_x {
            if frame.restart_interval > 0 {
                if left == 0 {
                    bits.restart()?;
                    scan.iter_mut().for_each(|c| c.pred = 0);
                    left = frame.restart_interval;
                }
                left -= 1;
            }
            for c in &mut scan {
                for by in 0..c.v {
                    for bx in 0..c.h {
                        if !c.luma {
                            skip_block(&mut bits, c)?;
                            continue;
                        }
                        let mut coef = [0f32; 16];
                        luma_block(&mut bits, c, quant, need, n, &mut coef)?;
                        idct.run(&coef, &mut pixels);
                        // The block's place in the reduced picture.
                        let (x0, y0) = ((mx * c.h + bx) * n, (my * c.v + by) * n);
                        for y in 0..n {
                            let Some(row) = out.get_mut((y0 + y) * w..(y0 + y + 1) * w) else {
                                break;
                            };
                            for x in 0..n {
                                if let Some(px) = row.get_mut(x0 + x) {
                                    *px = pixels[y * n + x];
                                }
                            }
                        }
                    }
                }
            }
        }
        if bits.overran() {
            return Err(Corrupt("data ends early"));
        }
    }
    Ok((w, h))
}

/// Decodes one luma block's coefficients into `coef` (the top-left `n`x`n`,
/// dequantized, row-major) and skips the rest.
#[inline]
fn luma_block(
    bits: &mut Bits,
    c: &mut ScanComponent,
    quant: &[u16; 64],
    need: usize,
    n: usize,
    coef: &mut [f32; 16],
) -> Result<(), ReducedError> {
    let s = u32::from(bits.symbol(c.dc)?);
    if s > 16 {
        return Err(Corrupt("bad DC size"));
    }
    let diff = extend(bits.take(s), s);
    c.pred = c.pred.wrapping_add(diff);
    coef[0] = c.pred as f32 * f32::from(quant[0]);
    let mut k = 1;
    while k < need {
        let (rs, v) = bits.coefficient(c.ac)?;
        let (run, size) = (usize::from(rs >> 4), u32::from(rs & 15));
        if size == 0 {
            if run != 15 {
                return Ok(());
            }
            k += 16;
            continue;
        }
        k += run;
        if k > 63 {
            return Err(Corrupt("coefficient past the block"));
        }
        if k < need {
            let natural = usize::from(ZIGZAG[k]);
            let (row, col) = (natural / 8, natural % 8);
            if row < n && col < n {
                coef[row * n + col] = extend(v, size) as f32 * f32::from(quant[k]);
            }
        }
        k += 1;
    }
    bits.skip_ac(c.ac, k)
}

/// Walks one block's coefficients without keeping any (chroma).
#[inline]
fn skip_block(bits: &mut Bits, c: &ScanComponent) -> Result<(), ReducedError> {
    let s = u32::from(bits.symbol(c.dc)?);
    if s > 16 {
        return Err(Corrupt("bad DC size"));
    }
    bits.take(s);
    bits.skip_ac(c.ac, 1)
}

/// The `n`-point inverse DCT (n = 1, 2 or 4) of a block's lowest
/// frequencies: the 8x8 block's picture sampled at the centres of its
/// `8/n`-pixel cells, which is what a scaled decode shows.
struct Idct {
    n: usize,
    /// `basis[x * n + u]`: weight of frequency `u` at output sample `x`.
    basis: [f32; 16],
}

impl Idct {
    fn new(n: usize) -> Self {
        let mut basis = [0f32; 16];
        for x in 0..n {
            for u in 0..n {
                // The 8-point IDCT's weight, C(u)/2, at the cell's centre.
                let c = if u == 0 {
                    std::f32::consts::FRAC_1_SQRT_2
                } else {
                    1.0
                };
                let angle = (2 * x + 1) as f32 * u as f32 * std::f32::consts::PI / (2 * n) as f32;
                basis[x * n + u] = c / 2.0 * angle.cos();
            }
        }
        Idct { n, basis }
    }

    /// Pixels of the block (row-major `n`x`n`) from its dequantized
    /// top-left coefficients (row-major `n`x`n`).
    #[inline]
    fn run(&self, coef: &[f32; 16], out: &mut [u8; 16]) {
        let n = self.n;
        if n == 1 {
            out[0] = level(coef[0] / 8.0);
            return;
        }
        // Rows of coefficients to rows of samples, then columns.
        let mut rows = [0f32; 16];
        for v in 0..n {
            for x in 0..n {
                rows[v * n + x] = (0..n)
                    .map(|u| self.basis[x * n + u] * coef[v * n + u])
                    .sum();
            }
        }
        for y in 0..n {
            for x in 0..n {
                let s: f32 = (0..n)
                    .map(|v| self.basis[y * n + v] * rows[v * n + x])
                    .sum();
                out[y * n + x] = level(s);
            }
        }
    }
}

/// A sample level-shifted back to 0-255, rounded and clamped.
#[inline]
fn level(v: f32) -> u8 {
    (v + 128.5).clamp(0.0, 255.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::motion::image::{decode_luma_into, shrink_into};
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

    use crate::motion::test_rng::Rng;

    /// A camera-like RGB picture: gradients, a bright square, noise.
    fn picture(w: usize, h: usize, seed: u32) -> Vec<u8> {
        let mut rng = Rng(seed);
        let mut rgb = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                let square = (w / 4..w / 2).contains(&x) && (h / 3..h / 2).contains(&y);
                let v = if square { 230 } else { (x / 3 + y / 2) % 200 } as i32;
                let n = (rng.next() % 21) as i32 - 10;
                let px = |c: i32| (c + n).clamp(0, 255) as u8;
                rgb.extend_from_slice(&[px(v), px(v * 3 / 4), px(255 - v)]);
            }
        }
        rgb
    }

    struct Options {
        sampling: SamplingFactor,
        restart: u16,
        gray: bool,
        progressive: bool,
    }

    const PLAIN: Options = Options {
        sampling: SamplingFactor::R_4_2_0,
        restart: 0,
        gray: false,
        progressive: false,
    };

    fn encode(w: usize, h: usize, o: &Options) -> Vec<u8> {
        let rgb = picture(w, h, 7);
        let mut out = Vec::new();
        let mut e = Encoder::new(&mut out, 85);
        e.set_sampling_factor(o.sampling);
        e.set_progressive(o.progressive);
        if o.restart > 0 {
            e.set_restart_interval(o.restart);
        }
        if o.gray {
            let luma: Vec<u8> = rgb.chunks(3).map(|p| p[1]).collect();
            e.encode(&luma, w as u16, h as u16, ColorType::Luma)
                .unwrap();
        } else {
            e.encode(&rgb, w as u16, h as u16, ColorType::Rgb).unwrap();
        }
        out
    }

    /// The full decode box-averaged to the reduced size: what the reduced
    /// decode must match.
    fn reference(jpeg: &[u8], min_width: usize) -> (Vec<u8>, usize, usize) {
        let mut full = Vec::new();
        let (w, h) = decode_luma_into(jpeg, &mut full).unwrap();
        let mut out = Vec::new();
        let (rw, rh) = shrink_into(&full, w, h, 1 << reduction(w, min_width), &mut out);
        (out, rw, rh)
    }

    /// Decodes reduced and compares with the reference: same size, mean
    /// error within a level, no pixel far off (ringing at the square's
    /// edges is where they differ most).
    fn matches_reference(jpeg: &[u8], min_width: usize) -> (usize, usize) {
        let mut out = Vec::new();
        let (w, h) = decode_reduced_luma(jpeg, min_width, &mut out).unwrap();
        let (expected, rw, rh) = reference(jpeg, min_width);
        assert_eq!((w, h), (rw, rh));
        assert_eq!(out.len(), w * h);
        let diffs: Vec<i32> = out
            .iter()
            .zip(&expected)
            .map(|(&a, &b)| (i32::from(a) - i32::from(b)).abs())
            .collect();
        let mean = diffs.iter().sum::<i32>() as f64 / diffs.len() as f64;
        let worst = diffs.iter().copied().max().unwrap();
        assert!(mean < 1.5, "mean difference {mean} at {w}x{h}");
        assert!(worst < 40, "worst difference {worst} at {w}x{h}");
        (w, h)
    }

    #[test]
    fn reduction_keeps_the_working_width() {
        assert_eq!(reduction(1920, 240), 3);
        assert_eq!(reduction(1280, 240), 2);
        assert_eq!(reduction(768, 240), 1);
        assert_eq!(reduction(640, 240), 1);
        assert_eq!(reduction(479, 240), 1);
        assert_eq!(reduction(478, 240), 0);
        assert_eq!(reduction(100, 240), 0);
        assert_eq!(reduction(100, 0), 3);
        assert_eq!(reduced_size(1280, 720, 2), (320, 180));
        assert_eq!(reduced_size(1921, 1081, 3), (241, 136));
    }

    #[test]
    fn each_scale_matches_the_full_decode_averaged() {
        // 1/8 (DC only), 1/4 and 1/2, with 4:2:0.
        assert_eq!(
            matches_reference(&encode(1920, 1080, &PLAIN), 240),
            (240, 135)
        );
        assert_eq!(
            matches_reference(&encode(1280, 720, &PLAIN), 240),
            (320, 180)
        );
        assert_eq!(
            matches_reference(&encode(768, 576, &PLAIN), 240),
            (384, 288)
        );
    }

    #[test]
    fn sampling_gray_odd_sizes_and_restarts() {
        for sampling in [
            SamplingFactor::R_4_4_4,
            SamplingFactor::R_4_2_2,
            SamplingFactor::R_4_4_0,
        ] {
            let o = Options { sampling, ..PLAIN };
            matches_reference(&encode(656, 496, &o), 160);
        }
        // zune-jpeg 0.4 decodes 4:1:1 (luma 4x1) wrongly, so the picture
        // that was encoded is the reference here.
        let o = Options {
            sampling: SamplingFactor::R_4_1_1,
            ..PLAIN
        };
        let (w, h) = (656, 496);
        let mut out = Vec::new();
        let size = decode_reduced_luma(&encode(w, h, &o), 160, &mut out).unwrap();
        assert_eq!(size, (164, 124));
        let luma: Vec<u8> = picture(w, h, 7)
            .chunks(3)
            .map(|p| {
                let [r, g, b] = [p[0], p[1], p[2]].map(f32::from);
                (0.299 * r + 0.587 * g + 0.114 * b).round() as u8
            })
            .collect();
        let mut expected = Vec::new();
        shrink_into(&luma, w, h, 4, &mut expected);
        let mean = out
            .iter()
            .zip(&expected)
            .map(|(&a, &b)| (f64::from(a) - f64::from(b)).abs())
            .sum::<f64>()
            / out.len() as f64;
        assert!(mean < 1.5, "4:1:1: mean difference {mean}");
        let gray = Options {
            gray: true,
            ..PLAIN
        };
        matches_reference(&encode(1280, 720, &gray), 240);
        // Sides that are no multiple of the block or the MCU.
        assert_eq!(
            matches_reference(&encode(1001, 333, &PLAIN), 120),
            (126, 42)
        );
        assert_eq!(matches_reference(&encode(1001, 333, &gray), 120), (126, 42));
        for restart in [1, 3, 7] {
            let o = Options { restart, ..PLAIN };
            matches_reference(&encode(1001, 333, &o), 120);
        }
    }

    #[test]
    fn unsupported_jpegs_say_so() {
        let mut out = Vec::new();
        let progressive = Options {
            progressive: true,
            ..PLAIN
        };
        let jpeg = encode(640, 480, &progressive);
        assert_eq!(
            decode_reduced_luma(&jpeg, 240, &mut out),
            Err(Unsupported("progressive"))
        );
        let small = encode(320, 240, &PLAIN);
        assert_eq!(
            decode_reduced_luma(&small, 240, &mut out),
            Err(Unsupported("too small to reduce"))
        );
        // A 12-bit frame header.
        let mut twelve = encode(640, 480, &PLAIN);
        let sof = twelve.windows(2).position(|m| m == [0xFF, 0xC0]).unwrap();
        twelve[sof + 4] = 12;
        assert_eq!(
            decode_reduced_luma(&twelve, 240, &mut out),
            Err(Unsupported("not 8-bit"))
        );
    }

    #[test]
    fn hostile_input_is_an_error_never_a_panic() {
        let mut out = Vec::new();
        for bytes in [
            &b""[..],
            b"\xFF",
            b"\xFF\xD8",
            b"\xFF\xD8\xFF",
            b"\xFF\xD8\xFF\xD9",
        ] {
            assert!(matches!(
                decode_reduced_luma(bytes, 160, &mut out),
                Err(Corrupt(_))
            ));
        }
        let jpeg = encode(
            640,
            480,
            &Options {
                restart: 4,
                ..PLAIN
            },
        );
        // A frame header claiming 65535x65535 is refused before allocating.
        let mut huge = jpeg.clone();
        let sof = huge.windows(2).position(|m| m == [0xFF, 0xC0]).unwrap();
        huge[sof + 5..sof + 9].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(
            decode_reduced_luma(&huge, 160, &mut out),
            Err(Corrupt("bad size"))
        );
        // Truncated anywhere: an error (the scan ends early) or, cut in
        // the last bytes only, a picture.
        for cut in (0..jpeg.len()).step_by(97) {
            if decode_reduced_luma(&jpeg[..cut], 160, &mut out).is_ok() {
                assert!(cut > jpeg.len() - 16, "cut at {cut} of {}", jpeg.len());
            }
        }
        let mut rng = Rng(99);
        for _ in 0..2000 {
            let mut broken = jpeg.clone();
            for _ in 0..1 + rng.next() % 6 {
                let i = rng.next() as usize % broken.len();
                broken[i] = rng.next() as u8;
            }
            if let Ok((w, h)) = decode_reduced_luma(&broken, 160, &mut out) {
                assert_eq!(out.len(), w * h);
                assert!(w <= MAX_SIDE && h <= MAX_SIDE);
            }
        }
        assert!(decode_reduced_luma(&jpeg, 160, &mut out).is_ok());
    }
}
