#!/usr/bin/env python3
"""tests/report/check_report_xml.py PAGE.html [PAGE.html ...]

Checks pages written by sae_report with a real, strict XML parser (expat,
through xml.etree.ElementTree) and for anything that would make them less
than self-contained:
  - the page parses as XML, its root is <html>, it has cards with anchors;
  - the bytes contain no URL scheme (http://, https://), no <script src>,
    <link>, <img>, <iframe>, <object>, <embed>, no CSS @import or url(;
  - every <script> is inline, and every id is unique (anchors must be).
Exits 0 when every page passes, 1 otherwise. Standard library only.
"""
import sys
import xml.etree.ElementTree as ET

FORBIDDEN = ["http://", "https://", "<script src", "<link", "<img", "<iframe", "<object", "<embed", "@import", "url("]


def check(path):
    problems = []
    with open(path, "rb") as f:
        data = f.read()
    text = data.decode("utf-8")  # raises on invalid UTF-8
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        return ["not well-formed XML: %s" % e]
    if root.tag != "html":
        problems.append("the root element is <%s>, not <html>" % root.tag)
    for needle in FORBIDDEN:
        at = text.find(needle)
        if at != -1:
            problems.append("contains %r at character %d: ...%s..." % (needle, at, text[max(0, at - 40):at + 40]))
    for script in root.iter("script"):
        if "src" in script.attrib:
            problems.append("a <script> with src=%r" % script.attrib["src"])
    ids = [e.attrib["id"] for e in root.iter() if "id" in e.attrib]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        problems.append("duplicate ids: %s" % ", ".join(duplicates))
    cards = [e for e in root.iter("article") if e.attrib.get("class") == "card"]
    if not cards:
        problems.append("no latent cards")
    for card in cards:
        if card.attrib.get("id") != "latent-" + card.attrib.get("data-latent", "?"):
            problems.append("card %r has no matching anchor id" % card.attrib.get("id"))
    return problems


def main(paths):
    if not paths:
        print(__doc__)
        return 2
    failed = False
    for path in paths:
        problems = check(path)
        for p in problems:
            print("%s: %s" % (path, p))
        if problems:
            failed = True
        else:
            print("%s: well-formed XML, self-contained" % path)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
