//! An error with its causes, for logs and `/status`: `reqwest`'s top error
//! says little ("error sending request"); its sources say why (refused, a
//! certificate, a timeout).

/// `e` followed by each of its sources, joined by `: `.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_follow_the_error() {
        #[derive(Debug, thiserror::Error)]
        #[error("error sending request")]
        struct Send(#[source] std::io::Error);
        let e = Send(std::io::Error::other("connection refused"));
        assert_eq!(error_chain(&e), "error sending request: connection refused");
    }
}
