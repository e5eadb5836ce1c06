//! The XML elements the PMML writer builds: a name, attributes and children, rendered once,
//! indented with tabs as sklearn2pmml writes, with every attribute value and text escaped on the
//! way out (no string is spliced into markup).

/// An element being built.
#[derive(Clone, Debug)]
pub struct El {
    name: &'static str,
    attrs: Vec<(&'static str, String)>,
    /// Child elements; an element with none holds `text` (possibly empty).
    kids: Vec<El>,
    text: String,
}

impl El {
    pub fn new(name: &'static str) -> El {
        El {
            name,
            attrs: Vec::new(),
            kids: Vec::new(),
            text: String::new(),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The value of an attribute, if it has it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    /// With an attribute (its value is escaped when rendered).
    pub fn attr(mut self, key: &'static str, value: impl Into<String>) -> El {
        self.attrs.push((key, value.into()));
        self
    }

    /// With an attribute when there is a value.
    pub fn attr_opt(self, key: &'static str, value: Option<impl Into<String>>) -> El {
        match value {
            Some(v) => self.attr(key, v),
            None => self,
        }
    }

    /// With text content (rendered only while the element has no child elements).
    pub fn text(mut self, text: impl Into<String>) -> El {
        self.text = text.into();
        self
    }

    /// With a child element.
    pub fn child(mut self, c: El) -> El {
        self.push(c);
        self
    }

    /// With child elements, in order.
    pub fn children(mut self, cs: impl IntoIterator<Item = El>) -> El {
        for c in cs {
            self.push(c);
        }
        self
    }

    /// Adds a child element.
    pub fn push(&mut self, c: El) {
        self.kids.push(c);
    }

    /// The child elements.
    pub fn kids(&self) -> &[El] {
        &self.kids
    }

    /// The child elements, to edit in place.
    pub fn kids_mut(&mut self) -> &mut Vec<El> {
        &mut self.kids
    }

    /// The index of the first child element named `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.kids().iter().position(|k| k.name == name)
    }

    /// Renders the element at `depth` tabs, one element a line.
    pub fn render(&self, out: &mut String, depth: usize) {
        for _ in 0..depth {
            out.push('\t');
        }
        out.push('<');
        out.push_str(self.name);
        for (k, v) in &self.attrs {
            out.push(' ');
            out.push_str(k);
            out.push_str("=\"");
            escape(v, out);
            out.push('"');
        }
        if self.kids.is_empty() {
            if self.text.is_empty() {
                out.push_str("/>\n");
            } else {
                out.push('>');
                escape(&self.text, out);
                out.push_str("</");
                out.push_str(self.name);
                out.push_str(">\n");
            }
        } else {
            out.push_str(">\n");
            for c in &self.kids {
                c.render(out, depth + 1);
            }
            for _ in 0..depth {
                out.push('\t');
            }
            out.push_str("</");
            out.push_str(self.name);
            out.push_str(">\n");
        }
    }
}

/// Appends `s` escaped for an attribute value or text.
fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_text_are_escaped_and_children_indented() {
        let e = El::new("A")
            .attr("x", "a\"<&>'b")
            .child(El::new("B").text("1 < 2"))
            .child(El::new("C"));
        let mut s = String::new();
        e.render(&mut s, 0);
        assert_eq!(
            s,
            "<A x=\"a&quot;&lt;&amp;&gt;&apos;b\">\n\t<B>1 &lt; 2</B>\n\t<C/>\n</A>\n"
        );
    }
}
