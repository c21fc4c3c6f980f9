//! A scripted RTSP camera, for the quirks of real cameras that the GStreamer
//! test camera (scripts/rtsp-server) cannot produce: parameter sets only in
//! the stream, RTP timestamps that jump back, keyframes far apart, garbage in
//! the middle of a good stream.
//!
//! It speaks just enough RTSP/1.0 for an RTSP client such as lookout's:
//! OPTIONS, DESCRIBE (an SDP the [`Script`] shapes), SETUP (interleaved TCP
//! only), PLAY (with or without `RTP-Info`), GET_PARAMETER and SET_PARAMETER
//! (keepalives) and TEARDOWN. After PLAY it sends H.264 in RTP (RFC 6184:
//! single NAL unit packets, FU-A for larger NAL units, the marker bit on an
//! access unit's last packet, a 90 kHz clock) over interleaved channel 0,
//! one access unit per frame interval, looping over the footage.
//!
//! What it did (sessions, the first keyframe, the quirks) is kept in
//! [`Happened`], for a test to hold against what lookout shows.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Largest RTP payload: larger NAL units are sent as FU-A fragments.
const MAX_PAYLOAD: usize = 1400;

/// The RTP clock of video.
const CLOCK: u32 = 90_000;

/// The dynamic payload type the SDP gives H.264.
const PAYLOAD_TYPE: u8 = 96;

/// NAL unit types (H.264 table 7-1) the camera looks at.
const NAL_SLICE: u8 = 1;
const NAL_IDR: u8 = 5;
const NAL_SEI: u8 = 6;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_AUD: u8 = 9;
const NAL_FU_A: u8 = 28;

/// Encodes `frames` frames of testdata/footage/vtest.avi (people walking) at
/// 320x240 and `fps` into Annex B H.264 in `dir`, with no B-frames and an IDR
/// every `gop` frames and nowhere else (no scene-cut keyframes). x264 puts
/// the SPS and PPS in front of every IDR.
pub fn encode_footage(dir: &Path, frames: u32, fps: u32, gop: u32) -> PathBuf {
    let out = dir.join(format!("vtest-g{gop}.h264"));
    let footage = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/footage/vtest.avi");
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(&footage)
        .args(["-an", "-vf", "scale=320:240", "-r", &fps.to_string()])
        .args(["-frames:v", &frames.to_string(), "-c:v", "libx264"])
        .args(["-preset", "veryfast", "-bf", "0", "-g", &gop.to_string()])
        .args(["-keyint_min", &gop.to_string(), "-sc_threshold", "0"])
        .args(["-pix_fmt", "yuv420p", "-f", "h264"])
        .arg(&out)
        .status()
        .expect("ffmpeg runs (scripts/test installs it)");
    assert!(status.success(), "ffmpeg encodes the footage");
    out
}

/// One access unit (a picture): its NAL units, without start codes.
#[derive(Debug, Clone)]
pub struct AccessUnit {
    pub nals: Vec<Vec<u8>>,
}

impl AccessUnit {
    /// Whether the picture is an IDR (a decoder can start here).
    pub fn is_idr(&self) -> bool {
        self.nals.iter().any(|n| nal_type(n) == NAL_IDR)
    }

    /// The NAL unit of `kind` in this access unit, if any.
    pub fn nal(&self, kind: u8) -> Option<&[u8]> {
        self.nals
            .iter()
            .find(|n| nal_type(n) == kind)
            .map(Vec::as_slice)
    }
}

fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |h| h & 0x1f)
}

/// The NAL units of an Annex B stream (start codes and the zero bytes in
/// front of a 4-byte start code removed).
pub fn nal_units(annex_b: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= annex_b.len() {
        if annex_b[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    starts
        .iter()
        .enumerate()
        .map(|(k, &s)| {
            let end = starts.get(k + 1).map_or(annex_b.len(), |&next| next - 3);
            let mut nal = &annex_b[s..end];
            // A NAL unit ends in its stop bit: trailing zeros belong to the
            // next start code.
            while let [rest @ .., 0] = nal {
                nal = rest;
            }
            nal
        })
        .filter(|n| !n.is_empty())
        .collect()
}

/// Splits an Annex B stream into access units (H.264 7.4.1.2.3): one starts
/// at a delimiter, SPS, PPS or SEI, or at a slice whose first_mb_in_slice
/// is 0, once the access unit so far holds a slice.
pub fn access_units(annex_b: &[u8]) -> Vec<AccessUnit> {
    let mut units: Vec<AccessUnit> = Vec::new();
    let mut current: Vec<Vec<u8>> = Vec::new();
    let mut has_slice = false;
    for nal in nal_units(annex_b) {
        let kind = nal_type(nal);
        let is_slice = kind == NAL_SLICE || kind == NAL_IDR;
        // first_mb_in_slice is the slice header's first field, ue(v): 0 is
        // the single bit 1.
        let first_slice = is_slice && nal.get(1).is_some_and(|b| *b >= 0x80);
        let starts_unit = matches!(kind, NAL_AUD | NAL_SPS | NAL_PPS | NAL_SEI) || first_slice;
        if starts_unit && has_slice {
            units.push(AccessUnit {
                nals: std::mem::take(&mut current),
            });
            has_slice = false;
        }
        has_slice |= is_slice;
        current.push(nal.to_vec());
    }
    if has_slice {
        units.push(AccessUnit { nals: current });
    }
    units
}

/// How the camera behaves.
#[derive(Debug, Clone)]
pub struct Script {
    /// Frames per second, the pace of sending.
    pub fps: u32,
    /// Whether the SDP carries `sprop-parameter-sets`. Without, the SPS and
    /// PPS come only in the stream (in front of each IDR).
    pub sdp_parameter_sets: bool,
    /// Whether the answer to PLAY carries `RTP-Info` (seq and rtptime).
    pub rtp_info: bool,
    /// The access unit every session starts at (0, the first, is an IDR;
    /// another may make a client wait for the next keyframe).
    pub start_at: usize,
    /// Once in the camera's life: after this many frames of a session, the
    /// RTP timestamp jumps back by this many seconds, and goes on from there.
    pub jump_back: Option<(u64, u32)>,
    /// Once in the camera's life: after this many frames of a session, an
    /// access unit of this many packets of random payloads (behind
    /// plausible NAL headers) takes the place of a frame.
    pub garbage: Option<(u64, usize)>,
    /// Once in the camera's life: after this many frames of a session, a
    /// middle fragment (FU-A) of a NAL unit whose start never came, marked
    /// as the end of an access unit, takes the place of a frame.
    pub orphan_fragment: Option<u64>,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            fps: 10,
            sdp_parameter_sets: true,
            rtp_info: true,
            start_at: 0,
            jump_back: None,
            garbage: None,
            orphan_fragment: None,
        }
    }
}

/// What the camera did, when.
#[derive(Debug, Default)]
pub struct Happened {
    /// Sessions that got to PLAY.
    pub plays: AtomicU32,
    /// When the first IDR went out.
    pub first_idr: Mutex<Option<SystemTime>>,
    /// When the timestamp jumped back.
    pub jumped: Mutex<Option<SystemTime>>,
    /// When the garbage went out.
    pub garbage: Mutex<Option<SystemTime>>,
    /// When the fragment without its start went out.
    pub orphan_fragment: Mutex<Option<SystemTime>>,
    jump_done: AtomicBool,
    garbage_done: AtomicBool,
    orphan_done: AtomicBool,
}

impl Happened {
    fn note(at: &Mutex<Option<SystemTime>>) {
        at.lock().expect("lock").get_or_insert_with(SystemTime::now);
    }

    /// The time in `at`, if it happened.
    pub fn when(at: &Mutex<Option<SystemTime>>) -> Option<SystemTime> {
        *at.lock().expect("lock")
    }
}

/// The footage and script, shared by the sessions.
struct Camera {
    units: Vec<AccessUnit>,
    script: Script,
    happened: Arc<Happened>,
}

/// A running fake camera; dropping it closes it and every session.
pub struct FakeCam {
    /// `rtsp://127.0.0.1:PORT/stream`.
    pub url: String,
    pub happened: Arc<Happened>,
    task: JoinHandle<()>,
}

impl FakeCam {
    /// Serves the access units of `annex_b` on 127.0.0.1 (a free port) as
    /// `script` says.
    pub async fn start(annex_b: &Path, script: Script) -> FakeCam {
        let bytes = std::fs::read(annex_b).expect("read the H.264 file");
        let units = access_units(&bytes);
        assert!(units.len() > 1, "the H.264 file holds pictures");
        assert!(units[0].is_idr(), "the footage starts with an IDR");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let happened = Arc::new(Happened::default());
        let camera = Arc::new(Camera {
            units,
            script,
            happened: happened.clone(),
        });
        let task = tokio::spawn(async move {
            // Sessions end with the camera: the set aborts them when dropped.
            let mut sessions = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let camera = camera.clone();
                sessions.spawn(async move {
                    // A client that goes away ends its session; nothing to report.
                    let _ = serve(stream, camera).await;
                });
                while sessions.try_join_next().is_some() {}
            }
        });
        FakeCam {
            url: format!("rtsp://{addr}/stream"),
            happened,
            task,
        }
    }
}

impl Drop for FakeCam {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One RTSP request.
struct Request {
    method: String,
    uri: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Writer = Arc<tokio::sync::Mutex<OwnedWriteHalf>>;

/// One client connection: requests until TEARDOWN or the client leaves.
async fn serve(stream: TcpStream, camera: Arc<Camera>) -> std::io::Result<()> {
    let (read, write) = stream.into_split();
    let write: Writer = Arc::new(tokio::sync::Mutex::new(write));
    let mut read = BufReader::new(read);
    let mut rng = XorShift::new(u64::from(camera.happened.plays.load(Ordering::Relaxed)) + 7);
    let session_id = format!("{:08X}", rng.next() as u32);
    let ssrc = rng.next() as u32;
    let first_seq = rng.next() as u16;
    let first_ts = rng.next() as u32;
    let mut sending: Option<JoinHandle<()>> = None;
    let result = loop {
        let req = match read_request(&mut read).await {
            Ok(Some(r)) => r,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        let cseq = req.header("CSeq").unwrap_or("0").to_string();
        let session = format!("Session: {session_id};timeout=60");
        let (status, headers, body) = match req.method.as_str() {
            "OPTIONS" => (
                "200 OK",
                vec!["Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER".to_string()],
                String::new(),
            ),
            "DESCRIBE" => {
                let base = format!("{}/", req.uri.trim_end_matches('/'));
                (
                    "200 OK",
                    vec![
                        format!("Content-Base: {base}"),
                        "Content-Type: application/sdp".to_string(),
                    ],
                    sdp(&camera),
                )
            }
            "SETUP" if req.header("Transport").is_some_and(|t| t.contains("TCP")) => (
                "200 OK",
                vec![
                    format!("Transport: RTP/AVP/TCP;unicast;interleaved=0-1;ssrc={ssrc:08X}"),
                    session.clone(),
                ],
                String::new(),
            ),
            "SETUP" => ("461 Unsupported Transport", Vec::new(), String::new()),
            "PLAY" => {
                let mut headers = vec![session.clone(), "Range: npt=0.000-".to_string()];
                if camera.script.rtp_info {
                    let track = format!("{}/trackID=0", req.uri.trim_end_matches('/'));
                    headers.push(format!(
                        "RTP-Info: url={track};seq={first_seq};rtptime={first_ts}"
                    ));
                }
                ("200 OK", headers, String::new())
            }
            "TEARDOWN" => ("200 OK", vec![session.clone()], String::new()),
            "GET_PARAMETER" | "SET_PARAMETER" => ("200 OK", vec![session.clone()], String::new()),
            _ => ("501 Not Implemented", Vec::new(), String::new()),
        };
        let mut reply = format!("RTSP/1.0 {status}\r\nCSeq: {cseq}\r\nServer: fakecam\r\n");
        for h in headers {
            reply.push_str(&h);
            reply.push_str("\r\n");
        }
        if !body.is_empty() {
            reply.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        reply.push_str("\r\n");
        reply.push_str(&body);
        if let Err(e) = write.lock().await.write_all(reply.as_bytes()).await {
            break Err(e);
        }
        match req.method.as_str() {
            "PLAY" if sending.is_none() => {
                camera.happened.plays.fetch_add(1, Ordering::Relaxed);
                let (camera, write) = (camera.clone(), write.clone());
                let stream = Stream {
                    ssrc,
                    seq: first_seq,
                    first_ts,
                };
                sending = Some(tokio::spawn(async move {
                    let _ = stream.send(&camera, &write).await;
                }));
            }
            "TEARDOWN" => break Ok(()),
            _ => {}
        }
    };
    if let Some(task) = sending {
        task.abort();
    }
    result
}

/// Reads the next request, skipping any interleaved data the client sends
/// (RTCP). `None` when the client closed the connection.
async fn read_request(read: &mut BufReader<OwnedReadHalf>) -> std::io::Result<Option<Request>> {
    loop {
        let first = match read.fill_buf().await?.first() {
            None => return Ok(None),
            Some(b) => *b,
        };
        match first {
            b'$' => {
                let mut head = [0u8; 4];
                read.read_exact(&mut head).await?;
                let len = u16::from_be_bytes([head[2], head[3]]);
                let mut skip = vec![0u8; usize::from(len)];
                read.read_exact(&mut skip).await?;
            }
            b'\r' | b'\n' => {
                read.consume(1);
            }
            _ => break,
        }
    }
    let mut line = String::new();
    if read.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or("").to_string();
    let uri = words.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if read.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let req = Request {
        method,
        uri,
        headers,
    };
    let body_len: usize = req
        .header("Content-Length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; body_len];
    read.read_exact(&mut body).await?;
    Ok(Some(req))
}

/// The session description: one H.264 video stream, with the parameter sets
/// or without.
fn sdp(camera: &Camera) -> String {
    let first = &camera.units[0];
    let sps = first
        .nal(NAL_SPS)
        .expect("an SPS in front of the first IDR");
    let pps = first.nal(NAL_PPS).expect("a PPS in front of the first IDR");
    let profile_level: String = sps[1..4].iter().map(|b| format!("{b:02X}")).collect();
    let mut fmtp = format!("packetization-mode=1;profile-level-id={profile_level}");
    if camera.script.sdp_parameter_sets {
        let b64 = base64::engine::general_purpose::STANDARD;
        fmtp.push_str(&format!(
            ";sprop-parameter-sets={},{}",
            b64.encode(sps),
            b64.encode(pps)
        ));
    }
    format!(
        "v=0\r\n\
         o=- 1 1 IN IP4 127.0.0.1\r\n\
         s=fakecam\r\n\
         c=IN IP4 0.0.0.0\r\n\
         t=0 0\r\n\
         a=control:*\r\n\
         m=video 0 RTP/AVP {PAYLOAD_TYPE}\r\n\
         a=rtpmap:{PAYLOAD_TYPE} H264/{CLOCK}\r\n\
         a=fmtp:{PAYLOAD_TYPE} {fmtp}\r\n\
         a=framerate:{}\r\n\
         a=control:trackID=0\r\n",
        camera.script.fps
    )
}

/// The RTP side of one session.
struct Stream {
    ssrc: u32,
    seq: u16,
    first_ts: u32,
}

impl Stream {
    /// Sends access units at the script's pace until the connection fails.
    async fn send(mut self, camera: &Camera, write: &Writer) -> std::io::Result<()> {
        let script = &camera.script;
        let happened = &camera.happened;
        let step = CLOCK / script.fps;
        let mut tick = tokio::time::interval(Duration::from_secs(1) / script.fps);
        let mut back: u32 = 0;
        let mut rng = XorShift::new(0x5eed);
        for n in 0u64.. {
            tick.tick().await;
            if script.jump_back.is_some_and(|(at, _)| n == at)
                && !happened.jump_done.swap(true, Ordering::Relaxed)
            {
                back = script.jump_back.map_or(0, |(_, secs)| secs * CLOCK);
                Happened::note(&happened.jumped);
            }
            let ts = self
                .first_ts
                .wrapping_add((n as u32).wrapping_mul(step))
                .wrapping_sub(back);
            let mut wire = Vec::new();
            if script.garbage.is_some_and(|(at, _)| n == at)
                && !happened.garbage_done.swap(true, Ordering::Relaxed)
            {
                let count = script.garbage.map_or(0, |(_, count)| count);
                for i in 0..count {
                    // Random bytes behind a header a packet could have: F
                    // bit clear, a single-NAL type (1-23).
                    let len = 200 + (rng.next() % 1200) as usize;
                    let mut p: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                    p[0] = (p[0] & 0x60) | (1 + (p[0] % 23));
                    self.packet(&mut wire, ts, i + 1 == count, &p);
                }
                write.lock().await.write_all(&wire).await?;
                Happened::note(&happened.garbage);
                continue;
            }
            if script.orphan_fragment == Some(n)
                && !happened.orphan_done.swap(true, Ordering::Relaxed)
            {
                // FU-A indicator, FU header of an IDR with neither the
                // start nor the end bit.
                let mut p = vec![0x60 | NAL_FU_A, NAL_IDR];
                p.extend((0..800).map(|_| rng.next() as u8));
                self.packet(&mut wire, ts, true, &p);
                write.lock().await.write_all(&wire).await?;
                Happened::note(&happened.orphan_fragment);
                continue;
            }
            let unit = &camera.units[(script.start_at + n as usize) % camera.units.len()];
            for (i, nal) in unit.nals.iter().enumerate() {
                let last_nal = i + 1 == unit.nals.len();
                if nal.len() <= MAX_PAYLOAD {
                    self.packet(&mut wire, ts, last_nal, nal);
                    continue;
                }
                // FU-A (RFC 6184 5.8): the NAL header's F and NRI bits in the
                // indicator, its type in the FU header, the rest in pieces.
                let indicator = (nal[0] & 0xe0) | NAL_FU_A;
                let pieces: Vec<&[u8]> = nal[1..].chunks(MAX_PAYLOAD - 2).collect();
                for (k, piece) in pieces.iter().enumerate() {
                    let start = if k == 0 { 0x80 } else { 0 };
                    let end = if k + 1 == pieces.len() { 0x40 } else { 0 };
                    let mut p = vec![indicator, start | end | (nal[0] & 0x1f)];
                    p.extend_from_slice(piece);
                    self.packet(&mut wire, ts, last_nal && end != 0, &p);
                }
            }
            write.lock().await.write_all(&wire).await?;
            if unit.is_idr() {
                Happened::note(&happened.first_idr);
            }
        }
        Ok(())
    }

    /// Appends one RTP packet, `$`-framed on channel 0, to `wire`.
    fn packet(&mut self, wire: &mut Vec<u8>, ts: u32, marker: bool, payload: &[u8]) {
        let len = u16::try_from(12 + payload.len()).expect("packet fits the frame");
        wire.push(b'$');
        wire.push(0);
        wire.extend_from_slice(&len.to_be_bytes());
        wire.push(0x80); // version 2, no padding, extension or CSRC
        wire.push(if marker { 0x80 } else { 0 } | PAYLOAD_TYPE);
        wire.extend_from_slice(&self.seq.to_be_bytes());
        wire.extend_from_slice(&ts.to_be_bytes());
        wire.extend_from_slice(&self.ssrc.to_be_bytes());
        wire.extend_from_slice(payload);
        self.seq = self.seq.wrapping_add(1);
    }
}

/// A small deterministic generator (xorshift64): the same garbage and ids
/// every run.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}
