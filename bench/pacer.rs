//! `footage serve`: plays the regression scenes to a camera client (Debian's
//! `motion`) as a camera would, over HTTP in real time.
//!
//! `motion` has no way to read a 10 fps MJPEG file at its own pace (its
//! `file://` input plays a movie at `motion`'s `framerate`, 15 fps by
//! default), so each scene is served as `multipart/x-mixed-replace` at the
//! scene's frame rate, from its first frame, to each connection. The time the
//! first frame goes out is the scene's time 0: one line per connection on
//! stdout says when (Unix seconds), so the event times `motion`'s hook writes
//! map to scene time without guessing at its start-up. After the last frame
//! the last picture is repeated (a still camera) until the client hangs up,
//! because a closed stream makes `motion` reconnect and see the scene again.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lookout::source::mjpeg::MjpegSplitter;

/// Multipart boundary; any token that cannot occur in the JPEG headers.
const BOUNDARY: &str = "lookoutscene";

/// Arguments of `footage serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Folder of `NAME.mjpeg` scenes; `GET /ANY/PREFIX/NAME` serves NAME.
    #[arg(long)]
    pub(crate) scenes: PathBuf,
    /// Frames per second to send at (the scenes' own rate).
    #[arg(long, default_value_t = 10.0)]
    pub(crate) fps: f64,
}

/// Serves until killed. Prints `listening PORT`, then per connection
/// `start PATH CONN UNIX_T0` when the first frame is sent and
/// `end PATH CONN FRAMES` when the scene's last frame is sent.
pub(crate) fn run(args: Args) -> Result<(), String> {
    // Port 0: the kernel picks a free port and the script reads it here,
    // so no other process can take it in between.
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let out = Arc::new(Mutex::new(std::io::stdout()));
    say(&out, &format!("listening {port}"));
    let next = Arc::new(AtomicU64::new(1));
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let (dir, out, next) = (args.scenes.clone(), out.clone(), next.clone());
        let fps = args.fps;
        std::thread::spawn(move || {
            let id = next.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = serve(conn, &dir, fps, id, &out) {
                say(&out, &format!("closed {id} {e}"));
            }
        });
    }
    Ok(())
}

fn say(out: &Mutex<std::io::Stdout>, line: &str) {
    let mut o = out.lock().unwrap_or_else(|p| p.into_inner());
    let _ = writeln!(o, "{line}");
    let _ = o.flush();
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Splits a scene file into its JPEGs.
fn frames(path: &Path) -> Result<Vec<bytes::Bytes>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut splitter = MjpegSplitter::new();
    splitter.push(&bytes);
    let mut out = Vec::new();
    while let Ok(Some(jpeg)) = splitter.next_frame() {
        out.push(jpeg);
    }
    if out.is_empty() {
        return Err(format!("{}: no JPEG frames", path.display()));
    }
    Ok(out)
}

fn serve(
    mut conn: TcpStream,
    dir: &Path,
    fps: f64,
    id: u64,
    out: &Mutex<std::io::Stdout>,
) -> Result<(), String> {
    let mut reader = BufReader::new(conn.try_clone().map_err(|e| e.to_string())?);
    let mut request = String::new();
    reader.read_line(&mut request).map_err(|e| e.to_string())?;
    // Read the headers up to the blank line; nothing in them matters here.
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).map_err(|e| e.to_string())?;
        if n == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
    let name = path
        .split('?')
        .next()
        .unwrap_or("")
        .rsplit('/')
        .next()
        .unwrap_or("");
    let file = dir.join(format!("{name}.mjpeg"));
    let pictures = match frames(&file) {
        Ok(p) if !name.is_empty() => p,
        _ => {
            let _ = conn.write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n");
            return Err(format!("no scene for {path}"));
        }
    };
    let head = format!(
        "HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary={BOUNDARY}\r\n\
         Cache-Control: no-cache\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    let _ = conn.set_nodelay(true);
    let period = Duration::from_secs_f64(1.0 / fps.max(0.1));
    let t0 = Instant::now();
    let last = pictures.len() - 1;
    for i in 0.. {
        // Paced against the start, not the previous frame, so the stream
        // does not drift later than the scene's clock.
        let due = t0 + period * i;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let jpeg = &pictures[(i as usize).min(last)];
        let part = format!(
            "--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
            jpeg.len()
        );
        let stamp = unix_now();
        conn.write_all(part.as_bytes())
            .and_then(|()| conn.write_all(jpeg))
            .and_then(|()| conn.write_all(b"\r\n"))
            .map_err(|e| e.to_string())?;
        if i == 0 {
            say(out, &format!("start {path} {id} {stamp:.6}"));
        }
        if i as usize == last {
            say(out, &format!("end {path} {id} {}", last + 1));
        }
    }
    Ok(())
}
