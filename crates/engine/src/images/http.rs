//! Fetching an `import` source from an HTTP URL.

use std::io::Read;

use crate::error::EngineError;

/// Streams the body of `url`; non-2xx answers are errors.
pub(crate) fn get(url: &str) -> Result<Box<dyn Read + Send>, EngineError> {
    if !url.starts_with("http://") {
        return Err(EngineError::InvalidArgument(format!(
            "unsupported URL {url:?}: only http:// sources can be imported (no TLS client is built in)"
        )));
    }
    let response = ureq::get(url)
        .call()
        .map_err(|e| EngineError::InvalidArgument(format!("downloading {url}: {e}")))?;
    Ok(Box::new(response.into_body().into_reader()))
}
