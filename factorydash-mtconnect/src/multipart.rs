//! Splitting a streaming `/sample?interval=` answer into its documents.
//!
//! MTConnect Part 1, "Streaming" (section 8.3.3 in 1.x, "sample Request" with `interval`):
//! the agent answers `multipart/x-mixed-replace` with one MTConnectStreams document per part.
//! The reference agent (cppagent 1.8 to 2.7) sends `multipart/mixed` instead; both are
//! accepted. Each part is `--boundary`, headers (`Content-type`, `Content-length`), a blank
//! line and the document. A part may arrive split over any number of reads, or several parts
//! in one read: [`MultipartParts`] reassembles them. No I/O here.

/// Why a multipart stream cannot be read on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MultipartError {
    /// A part (or the data before the next boundary) is larger than the limit.
    #[error("a streamed part is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A part's `Content-length` is not a number.
    #[error("a streamed part has an invalid Content-length `{0}`")]
    InvalidLength(String),
}

/// The boundary of a `multipart/x-mixed-replace` or `multipart/mixed` content type
/// (`multipart/mixed;boundary=c7497a84-…`, quoted or not), or `None` for any other type.
pub fn boundary_of(content_type: &str) -> Option<String> {
    let (mime, params) = content_type.split_once(';')?;
    let mime = mime.trim().to_ascii_lowercase();
    if mime != "multipart/x-mixed-replace" && mime != "multipart/mixed" {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("boundary")).then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// Reassembles the parts of a multipart body from the chunks it arrives in.
///
/// ```
/// use factorydash_mtconnect::multipart::MultipartParts;
/// let mut parts = MultipartParts::new("b", 1 << 20);
/// parts.push(b"--b\r\nContent-type: text/xml\r\nContent-len");
/// assert_eq!(parts.next_part().unwrap(), None); // not all there yet
/// parts.push(b"gth: 5\r\n\r\n<a/>\n\r\n--b\r\nContent-length: 2\r\n\r\nhi\r\n");
/// assert_eq!(parts.next_part().unwrap().as_deref(), Some(&b"<a/>\n"[..]));
/// assert_eq!(parts.next_part().unwrap().as_deref(), Some(&b"hi"[..]));
/// assert_eq!(parts.next_part().unwrap(), None);
/// ```
#[derive(Debug, Clone)]
pub struct MultipartParts {
    marker: Vec<u8>,
    buf: Vec<u8>,
    limit: usize,
    closed: bool,
    /// How far (from the end of the marker) the search for the end of the headers got:
    /// each read searches only the new bytes, so a part that never ends costs linear time.
    headers_searched: usize,
    /// How far (from the start of the body) the search for the next boundary got.
    body_searched: usize,
}

impl MultipartParts {
    /// A splitter for `boundary` (without the leading `--`); no part may exceed `limit` bytes.
    pub fn new(boundary: &str, limit: usize) -> Self {
        MultipartParts {
            marker: format!("--{boundary}").into_bytes(),
            buf: Vec::new(),
            limit,
            closed: false,
            headers_searched: 0,
            body_searched: 0,
        }
    }

    /// Adds bytes as they arrive. [`MultipartParts::next_part`] refuses a part once what
    /// waits for it passes the limit, so call it after each push: then no more than the
    /// limit and one chunk are ever held.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Whether the closing boundary (`--boundary--`) was seen: no part follows.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Bytes received but not yet returned as a part.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next whole part's body, `Ok(None)` until one has arrived in full.
    ///
    /// # Errors
    /// [`MultipartError::TooLarge`] when the data waiting for a part exceeds the limit;
    /// [`MultipartError::InvalidLength`] for a `Content-length` that is not a number.
    pub fn next_part(&mut self) -> Result<Option<Vec<u8>>, MultipartError> {
        if self.closed {
            return Ok(None);
        }
        let Some(start) = find(&self.buf, &self.marker) else {
            // Keep only what could be the beginning of a marker split across reads.
            let keep = self.marker.len().min(self.buf.len());
            let drop = self.buf.len() - keep;
            self.buf.drain(..drop);
            self.headers_searched = 0;
            self.body_searched = 0;
            return Ok(None);
        };
        let after_marker = start + self.marker.len();
        if self.buf.len() < after_marker + 2 {
            return Ok(None);
        }
        if &self.buf[after_marker..after_marker + 2] == b"--" {
            self.closed = true;
            self.buf.clear();
            return Ok(None);
        }
        // Headers end at the first blank line.
        let searched = self.headers_searched;
        let Some((headers_end, body_start)) = blank_line(&self.buf[after_marker..], searched)
        else {
            self.headers_searched = (self.buf.len() - after_marker).saturating_sub(3);
            return self.check_limit();
        };
        let headers = &self.buf[after_marker..after_marker + headers_end];
        let body_start = after_marker + body_start;
        let length = content_length(headers)?;
        let body_end = match length {
            Some(n) => {
                if n > self.limit {
                    return Err(MultipartError::TooLarge { limit: self.limit });
                }
                if self.buf.len() < body_start + n {
                    return Ok(None);
                }
                body_start + n
            }
            // No length: the body runs to the next boundary (less the CRLF before it).
            None => match find(
                &self.buf[body_start + self.body_searched.min(self.buf.len() - body_start)..],
                &self.marker,
            ) {
                Some(i) => {
                    let mut end = body_start + self.body_searched + i;
                    if self.buf[..end].ends_with(b"\r\n") {
                        end -= 2;
                    } else if self.buf[..end].ends_with(b"\n") {
                        end -= 1;
                    }
                    end
                }
                None => {
                    self.body_searched =
                        (self.buf.len() - body_start).saturating_sub(self.marker.len() - 1);
                    return self.check_limit();
                }
            },
        };
        let body = self.buf[body_start..body_end].to_vec();
        self.buf.drain(..body_end);
        self.headers_searched = 0;
        self.body_searched = 0;
        Ok(Some(body))
    }

    fn check_limit(&self) -> Result<Option<Vec<u8>>, MultipartError> {
        if self.buf.len() > self.limit {
            Err(MultipartError::TooLarge { limit: self.limit })
        } else {
            Ok(None)
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

/// The end of the header block (after the marker line) and the start of the body,
/// searching from `from` on (what came before was searched already).
fn blank_line(after_marker: &[u8], from: usize) -> Option<(usize, usize)> {
    let from = from.min(after_marker.len());
    if let Some(i) = find(&after_marker[from..], b"\r\n\r\n") {
        return Some((from + i, from + i + 4));
    }
    find(&after_marker[from..], b"\n\n").map(|i| (from + i, from + i + 2))
}

fn content_length(headers: &[u8]) -> Result<Option<usize>, MultipartError> {
    for line in headers.split(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(line);
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                let value = value.trim();
                return value
                    .parse()
                    .map(Some)
                    .map_err(|_| MultipartError::InvalidLength(value.to_owned()));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(
            boundary_of("multipart/mixed;boundary=abc-1").as_deref(),
            Some("abc-1")
        );
        assert_eq!(
            boundary_of("multipart/x-mixed-replace; boundary=\"q\"").as_deref(),
            Some("q")
        );
        assert_eq!(boundary_of("text/xml; charset=utf-8"), None);
        assert_eq!(boundary_of("multipart/mixed"), None);
    }

    #[test]
    fn any_split_gives_the_same_parts() {
        let body = b"preamble\r\n--B\r\nContent-type: text/xml\r\nContent-length: 11\r\n\r\n<a>--B</a>\n\r\n--B\r\nContent-Type: text/xml\r\n\r\n<b/>\r\n--B--\r\n";
        for split in 1..body.len() {
            let mut p = MultipartParts::new("B", 1024);
            let mut got = Vec::new();
            for chunk in body.chunks(split) {
                p.push(chunk);
                while let Some(part) = p.next_part().unwrap() {
                    got.push(part);
                }
            }
            assert_eq!(
                got,
                vec![b"<a>--B</a>\n".to_vec(), b"<b/>".to_vec()],
                "split {split}"
            );
            assert!(p.is_closed());
        }
    }

    #[test]
    fn limits_and_bad_lengths() {
        let mut p = MultipartParts::new("B", 8);
        p.push(b"--B\r\nContent-length: 100\r\n\r\n");
        assert_eq!(p.next_part(), Err(MultipartError::TooLarge { limit: 8 }));
        let mut p = MultipartParts::new("B", 8);
        p.push(b"--B\r\nContent-length: x\r\n\r\n");
        assert!(matches!(
            p.next_part(),
            Err(MultipartError::InvalidLength(_))
        ));
        let mut p = MultipartParts::new("B", 8);
        p.push(&[b'z'; 100]);
        assert_eq!(p.next_part(), Ok(None));
        assert!(p.pending() <= 3, "junk before a boundary is not kept");
    }
}
