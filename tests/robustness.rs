//! Property tests: whatever bytes arrive from a camera, an upstream or a
//! client, the parsers neither panic nor grow without bound.

use lookout::control;
use lookout::jpeg::dimensions as jpeg_dimensions;
use lookout::source::mjpeg::MjpegSplitter;
use lookout::source::SourceSpec;
use proptest::prelude::*;

/// A small valid-looking JPEG (SOI, a DQT-like segment, SOF0, SOS, data, EOI).
fn jpeg(width: u16, height: u16, data: &[u8]) -> Vec<u8> {
    let mut j = vec![0xFF, 0xD8, 0xFF, 0xDB, 0x00, 0x04, 0x00, 0x00];
    j.extend([0xFF, 0xC0, 0x00, 0x0B, 0x08]);
    j.extend(height.to_be_bytes());
    j.extend(width.to_be_bytes());
    j.extend([0x01, 0x01, 0x11, 0x00]);
    j.extend([0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00]);
    for b in data {
        j.push(*b);
        if *b == 0xFF {
            j.push(0x00); // stuffed, as in real entropy-coded data
        }
    }
    j.extend([0xFF, 0xD9]);
    j
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary bytes in arbitrary chunks: no panic, and the buffer never
    /// holds much more than the frame cap.
    #[test]
    fn splitter_survives_any_input(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..512), 0..64),
    ) {
        let cap = 4096;
        let mut s = MjpegSplitter::with_max_frame(cap);
        for chunk in &chunks {
            s.push(chunk);
            loop {
                match s.next_frame() {
                    Ok(Some(frame)) => {
                        prop_assert!(frame.len() <= cap);
                        prop_assert_eq!(&frame[..2], &[0xFF, 0xD8]);
                        let _ = jpeg_dimensions(&frame);
                    }
                    Ok(None) => break,
                    // Refused data is reported and skipped; only reading fails.
                    Err(e) if e.is_bad_data() => continue,
                    Err(e) => prop_assert!(false, "unexpected error {e}"),
                }
            }
            prop_assert!(s.buffered() <= cap + 512 + 2, "buffered {}", s.buffered());
        }
    }

    /// Real frames with garbage (multipart headers, stray bytes) between them,
    /// split anywhere: every frame comes out whole and in order.
    #[test]
    fn splitter_finds_every_frame_between_garbage(
        frames in prop::collection::vec((1u16..4000, 1u16..4000, prop::collection::vec(any::<u8>(), 0..300)), 1..6),
        garbage in prop::collection::vec("[ -~\r\n]{0,80}", 6),
        cut in 1usize..700,
    ) {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for (i, (w, h, data)) in frames.iter().enumerate() {
            stream.extend(garbage[i % garbage.len()].as_bytes());
            let j = jpeg(*w, *h, data);
            expected.push(j.clone());
            stream.extend(j);
        }
        let mut s = MjpegSplitter::new();
        let mut got = Vec::new();
        for chunk in stream.chunks(cut) {
            s.push(chunk);
            while let Some(frame) = s.next_frame().unwrap() {
                got.push(frame.to_vec());
            }
        }
        prop_assert_eq!(got.len(), expected.len());
        for (g, (e, (w, h, _))) in got.iter().zip(expected.iter().zip(frames.iter())) {
            prop_assert_eq!(g, e);
            prop_assert_eq!(jpeg_dimensions(g), Some((*w, *h)));
        }
    }

    /// Any message: the command parser answers, never panics.
    #[test]
    fn command_parser_survives_any_message(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = control::parse(&bytes);
    }

    /// JSON-shaped messages with odd values: a command or a refusal, and the id
    /// comes back whatever its type.
    #[test]
    fn command_parser_echoes_any_id(cmd in "[a-z_]{0,12}", id in any::<i64>()) {
        let text = format!(r#"{{"cmd": "{cmd}", "id": {id}}}"#);
        let (_, echoed) = control::parse(text.as_bytes());
        prop_assert_eq!(echoed, Some(serde_json::json!(id)));
    }

    /// Any `--source` text: parsed or refused with a reason, never a panic.
    #[test]
    fn source_uris_never_panic(uri in "(synthetic:\\?|exec:|file:|v4l2:|http://)?[ -~]{0,60}") {
        if let Err(e) = uri.parse::<SourceSpec>() {
            prop_assert!(!e.reason.is_empty());
        }
    }
}
