//! Reading the decoder's pictures: a YUV4MPEG2 stream.
//!
//! The decoder writes I420 pictures. Raw planes would need their size known
//! in advance (and a restart whenever a camera changes it); YUV4MPEG2 says
//! the size in its header line and marks every picture, for a few bytes.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

use crate::picture::{Picture, PictureError};

/// Longest header or frame line accepted.
const MAX_LINE: usize = 1024;

/// Why the stream cannot be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Y4mError {
    /// Reading the pipe failed.
    #[error("reading the decoder's output failed: {0}")]
    Io(#[from] std::io::Error),
    /// The stream is not what was asked for.
    #[error("the decoder's output is not I420 YUV4MPEG2: {0}")]
    Format(String),
    /// The picture size is out of range.
    #[error(transparent)]
    Picture(#[from] PictureError),
}

/// Pictures out of a YUV4MPEG2 stream.
pub(crate) struct Y4mReader<R> {
    reader: R,
    size: Option<(u32, u32)>,
}

impl<R: AsyncBufRead + Unpin> Y4mReader<R> {
    /// A reader of `reader`, which starts with the stream header.
    pub(crate) fn new(reader: R) -> Self {
        Y4mReader { reader, size: None }
    }

    /// The next picture, or `None` at the end of the stream.
    pub(crate) async fn next_picture(&mut self) -> Result<Option<Picture>, Y4mError> {
        let (w, h) = match self.size {
            Some(size) => size,
            None => {
                let Some(line) = self.line().await? else {
                    return Ok(None);
                };
                let size = header(&line)?;
                self.size = Some(size);
                size
            }
        };
        let Some(line) = self.line().await? else {
            return Ok(None);
        };
        if !line.starts_with("FRAME") {
            return Err(Y4mError::Format(format!("expected FRAME, got {line:?}")));
        }
        let mut data = vec![0; Picture::len_for(w, h)];
        self.reader.read_exact(&mut data).await?;
        Ok(Some(Picture::new(w, h, data)?))
    }

    /// One line without its newline, at most [`MAX_LINE`] bytes.
    async fn line(&mut self) -> Result<Option<String>, Y4mError> {
        let mut buf = Vec::new();
        let n = (&mut self.reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut buf)
            .await?;
        if n == 0 {
            return Ok(None);
        }
        if buf.pop() != Some(b'\n') {
            return Err(Y4mError::Format("a line without its end".into()));
        }
        String::from_utf8(buf)
            .map(Some)
            .map_err(|_| Y4mError::Format("a line that is not text".into()))
    }
}

/// The size in a stream header, which must announce 4:2:0.
fn header(line: &str) -> Result<(u32, u32), Y4mError> {
    let mut words = line.split(' ');
    if words.next() != Some("YUV4MPEG2") {
        return Err(Y4mError::Format(format!("header {line:?}")));
    }
    let (mut w, mut h) = (None, None);
    for word in words {
        match word.split_at_checked(1) {
            Some(("W", v)) => w = v.parse().ok(),
            Some(("H", v)) => h = v.parse().ok(),
            Some(("C", v)) if !v.starts_with("420") => {
                return Err(Y4mError::Format(format!("chroma {v}, not 4:2:0")))
            }
            _ => {}
        }
    }
    match (w, h) {
        (Some(w), Some(h)) => Ok((w, h)),
        _ => Err(Y4mError::Format(format!("no size in {line:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_pictures_until_the_end() {
        let mut s = b"YUV4MPEG2 W4 H2 F10:1 Ip A1:1 C420jpeg XYSCSS=420JPEG\n".to_vec();
        for v in [1u8, 2] {
            s.extend_from_slice(b"FRAME\n");
            s.extend(std::iter::repeat_n(v, 12));
        }
        let mut r = Y4mReader::new(&s[..]);
        for v in [1u8, 2] {
            let p = r.next_picture().await.unwrap().unwrap();
            assert_eq!((p.width(), p.height()), (4, 2));
            assert_eq!(p.luma(), &[v; 8]);
        }
        assert!(r.next_picture().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn refuses_other_streams() {
        for bad in [
            &b"YUV4MPEG2 W4 H2 C444\nFRAME\n"[..],
            b"RIFF\n",
            b"YUV4MPEG2 W4\n",
            b"YUV4MPEG2 W4 H2\nFRAMX\n",
        ] {
            assert!(Y4mReader::new(bad).next_picture().await.is_err());
        }
        let cut = b"YUV4MPEG2 W4 H2\nFRAME\n\x01\x02";
        assert!(Y4mReader::new(&cut[..]).next_picture().await.is_err());
    }
}
