//! The few things read from product metadata XML: every element's local name, attributes
//! and text, in document order.

use quick_xml::events::Event;
use quick_xml::Reader;

/// One element of an XML document.
#[derive(Clone, Debug, PartialEq)]
pub struct Element {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    /// Its own text, trimmed (not its children's).
    pub text: String,
}

impl Element {
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

/// Every element of `text`, in the order their end tags appear.
pub fn elements(text: &str) -> Result<Vec<Element>, String> {
    let mut reader = Reader::from_str(text);
    let mut open: Vec<Element> = Vec::new();
    let mut out = Vec::new();
    let start = |e: &quick_xml::events::BytesStart<'_>| -> Result<Element, String> {
        let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
        let mut attributes = Vec::new();
        for a in e.attributes() {
            let a = a.map_err(|err| err.to_string())?;
            let key = String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned();
            let value = a
                .unescape_value()
                .map_err(|err| err.to_string())?
                .into_owned();
            attributes.push((key, value));
        }
        Ok(Element {
            name,
            attributes,
            text: String::new(),
        })
    };
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => open.push(start(&e)?),
            Ok(Event::Empty(e)) => out.push(start(&e)?),
            Ok(Event::Text(t)) => {
                if let Some(el) = open.last_mut() {
                    el.text
                        .push_str(&t.unescape().map_err(|err| err.to_string())?);
                }
            }
            Ok(Event::CData(t)) => {
                if let Some(el) = open.last_mut() {
                    el.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Ok(Event::End(_)) => {
                if let Some(mut el) = open.pop() {
                    el.text = el.text.trim().to_string();
                    out.push(el);
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => {
                return Err(format!(
                    "malformed XML at byte {}: {e}",
                    reader.buffer_position()
                ))
            }
        }
    }
    if let Some(el) = open.last() {
        return Err(format!("malformed XML: <{}> is never closed", el.name));
    }
    Ok(out)
}

/// The text of the first element named `name`.
pub fn first_text<'a>(els: &'a [Element], name: &str) -> Option<&'a str> {
    els.iter()
        .find(|e| e.name == name && !e.text.is_empty())
        .map(|e| e.text.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_carry_local_names_attributes_and_own_text() {
        let els = elements(
            r#"<?xml version="1.0"?><n1:A xmlns:n1="x"><B band_id="3">-1000</B><C/>
            <D> t &amp; u </D></n1:A>"#,
        )
        .unwrap_or_default();
        let names: Vec<&str> = els.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["B", "C", "D", "A"]);
        assert_eq!(els[0].attribute("band_id"), Some("3"));
        assert_eq!(els[0].text, "-1000");
        assert_eq!(first_text(&els, "D"), Some("t & u"));
        assert!(elements("<A><B></A>").is_err());
    }
}
