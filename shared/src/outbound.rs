//! Requests the app sends out: the port the components that call other
//! services use (uploads to its S3-compatible store, events to webhook
//! receivers), and the reply they read. The one adapter over Spin's outbound
//! HTTP is [`crate::spin::SpinHttp`]; tests script their own.

use crate::http::Method;

/// An HTTP reply, as much of it as a caller reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Outbound HTTP. `Err` means no answer came (refused, timed out, a host
/// `allowed_outbound_hosts` does not name); any status is an answer.
pub trait OutboundHttp {
    /// Sends one request, the body whole, and reads the reply whole.
    fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<Reply, String>;

    /// `GET`s `url` and hands the body to `chunk` piece by piece as it
    /// arrives, so a body of any size is read in bounded memory. `Ok(Err)`
    /// carries the status when it is not 200 (the body is then not read).
    fn get_streamed(
        &self,
        url: &str,
        chunk: &mut dyn FnMut(&[u8]),
    ) -> Result<Result<(), u16>, String>;
}

#[cfg(test)]
mod tests;
