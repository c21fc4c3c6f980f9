//! Reading what lookout writes as MP4 (the live view, MP4 clips) in the
//! tests: its top-level boxes, and the NAL units of a sample.

/// The whole boxes at the start of `b`, as (type, body), and how many bytes
/// follow the last whole one (a box cut by the end of a read).
pub fn boxes(mut b: &[u8]) -> (Vec<(String, &[u8])>, usize) {
    let mut out = Vec::new();
    while b.len() >= 8 {
        let size = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if size < 8 || size > b.len() {
            break;
        }
        out.push((String::from_utf8_lossy(&b[4..8]).into_owned(), &b[8..size]));
        b = &b[size..];
    }
    (out, b.len())
}

/// The NAL units of a length-prefixed sample; fails the test on a length
/// past the end or bytes after the last unit.
pub fn nals(mut b: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        assert!(len <= b.len() - 4, "a NAL length past the sample's end");
        out.push(&b[4..4 + len]);
        b = &b[4 + len..];
    }
    assert!(b.is_empty(), "bytes after the last NAL");
    out
}
