//! The request body on its way to the guest.
//!
//! A body is read up to [`BODY_PREBUFFER_BYTES`](crate::limits::BODY_PREBUFFER_BYTES)
//! (or to its end) before an instance is taken, so a client that sends
//! slowly holds only its connection; the rest streams to the guest with an
//! idle timeout between pieces. Both phases end at the request deadline.
//!
//! A client that sends a head and then no body byte at all is not answered
//! 408 by the host: after the idle timeout its request goes to the guest
//! with a body that fails at once, because docs/API.md lets a guest answer
//! without reading the body (an upload with a bad token is 401 "before any
//! of the body is read"). The instance is then held only for that answer.

use std::collections::VecDeque;
use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::time::{Instant, Sleep};

/// Why a body could not be read before the guest starts.
#[derive(Debug)]
pub enum PrebufferError {
    /// The client paused longer than the idle timeout, or the request
    /// deadline passed.
    TimedOut,
    /// The client broke the framing or went away.
    Client(hyper::Error),
}

/// Reads the start of `body` (up to `limit` bytes, or all of a shorter
/// body), each piece within `idle` of the last and all before `deadline`.
pub async fn prebuffer(
    mut body: Incoming,
    limit: usize,
    idle: Duration,
    deadline: Instant,
) -> Result<GuestBody, PrebufferError> {
    let mut frames = VecDeque::new();
    let mut buffered = 0;
    while buffered < limit && !body.is_end_stream() {
        let until = (Instant::now() + idle).min(deadline);
        match tokio::time::timeout_at(until, body.frame()).await {
            Err(_) if frames.is_empty() => {
                return Ok(GuestBody {
                    frames,
                    rest: None,
                    idle,
                    timer: None,
                    failure: Some(wasmtime_wasi_http::Error::ConnectionReadTimeout),
                })
            }
            Err(_) => return Err(PrebufferError::TimedOut),
            Ok(None) => {
                return Ok(GuestBody {
                    frames,
                    rest: None,
                    idle,
                    timer: None,
                    failure: None,
                })
            }
            Ok(Some(Err(e))) => return Err(PrebufferError::Client(e)),
            Ok(Some(Ok(frame))) => {
                buffered += frame.data_ref().map_or(0, Bytes::len);
                frames.push_back(frame);
            }
        }
    }
    let rest = (!body.is_end_stream()).then_some(body);
    Ok(GuestBody {
        frames,
        rest,
        idle,
        timer: None,
        failure: None,
    })
}

/// What the guest reads: the buffered frames, then the rest of the client's
/// body, failing with `connection-read-timeout` when the client pauses for
/// longer than the idle timeout.
pub struct GuestBody {
    frames: VecDeque<Frame<Bytes>>,
    rest: Option<Incoming>,
    idle: Duration,
    /// Runs while the guest waits for the client.
    timer: Option<Pin<Box<Sleep>>>,
    /// Reported once, after the buffered frames, when the client's body
    /// already failed before the guest started.
    failure: Option<wasmtime_wasi_http::Error>,
}

impl Body for GuestBody {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(frame) = self.frames.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        let this = &mut *self;
        let Some(rest) = this.rest.as_mut() else {
            return Poll::Ready(this.failure.take().map(Err));
        };
        match Pin::new(rest).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.timer = None;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.rest = None;
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                this.rest = None;
                Poll::Ready(None)
            }
            Poll::Pending => {
                let idle = this.idle;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                if timer.as_mut().poll(cx).is_ready() {
                    // Dropping the client's body makes hyper close the
                    // connection once the guest's response is out.
                    this.rest = None;
                    this.timer = None;
                    return Poll::Ready(Some(Err(
                        wasmtime_wasi_http::Error::ConnectionReadTimeout,
                    )));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
            && self.failure.is_none()
            && self.rest.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let buffered: u64 = self
            .frames
            .iter()
            .filter_map(Frame::data_ref)
            .map(|d| d.len() as u64)
            .sum();
        let rest = self
            .rest
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint);
        let mut hint = SizeHint::new();
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + buffered);
        }
        hint.set_lower(rest.lower() + buffered);
        hint
    }
}
