// sae/report/html_text.hpp: text from data made safe for a page that must
// parse both as HTML and as strict XML.
//
//   out += "<p>" + sae::html::text(piece) + "</p>";            // element content
//   out += "<span title=\"" + sae::html::attribute(piece) + "\">";
//   sae::html::number(0.012345);   // "0.01235"   (4 significant digits; NaN -> "n/a")
//   sae::html::percent(0.25);      // "25%"
//
// Token pieces are arbitrary bytes: '<', '&', quotes, control characters,
// invalid UTF-8, "]]>", "</script>". Every string from data goes through
// text() or attribute(), which
//   - replace bytes that are not well-formed UTF-8 by U+FFFD;
//   - replace what XML 1.0 forbids (C0 controls but tab, newline and carriage
//     return; U+FFFE, U+FFFF) and what HTML calls a parse error (DEL and the
//     C1 controls) by a visible stand-in: U+2400 + c for C0 (␀ ... ␟), ␡ for
//     DEL, U+FFFD for the rest;
//   - escape & < > (and " ' in attributes, where tab and newline become
//     character references so they survive attribute normalisation);
//   - write "://", "url(" and "@" as character references (the text reads the
//     same), so that a grep of the page for http://, url( or @import can only
//     find markup the renderer wrote, never data.
// Only the five XML escapes are used: HTML's named entities (&nbsp;) are not
// XML.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace sae {
namespace html {
namespace detail {

/// Appends code point `c` as UTF-8.
inline void append_utf8(std::string& out, std::uint32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

/// Decodes the UTF-8 sequence at s[i]: its code point and length, or
/// length 0 when it is not well formed (RFC 3629: no overlong forms, no
/// surrogates, nothing above U+10FFFF).
inline std::size_t decode_utf8(std::string_view s, std::size_t i, std::uint32_t& code_point) {
  const auto byte = [&](std::size_t k) -> std::uint32_t {
    return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u;
  };
  const auto continuation = [&](std::size_t k) { return (byte(k) & 0xC0) == 0x80; };
  const std::uint32_t c = byte(0);
  if (c < 0x80) {
    code_point = c;
    return 1;
  }
  // Lead byte: the sequence's length, its payload bits, and the smallest code
  // point that needs this length (anything below is an overlong form).
  std::size_t length = 0;
  std::uint32_t value = 0, minimum = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    length = 2;
    value = c & 0x1F;
    minimum = 0x80;
  } else if (c >= 0xE0 && c <= 0xEF) {
    length = 3;
    value = c & 0x0F;
    minimum = 0x800;
  } else if (c >= 0xF0 && c <= 0xF4) {
    length = 4;
    value = c & 0x07;
    minimum = 0x10000;
  } else {
    return 0;
  }
  for (std::size_t k = 1; k < length; ++k) {
    if (!continuation(k)) return 0;
    value = (value << 6) | (byte(k) & 0x3F);
  }
  if (value < minimum || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) return 0;
  code_point = value;
  return length;
}

/// `s` with escapes; `in_attribute` adds quotes and keeps tab / newline as references.
inline std::string escape(std::string_view s, bool in_attribute) {
  std::string out;
  out.reserve(s.size() + s.size() / 8);
  for (std::size_t i = 0; i < s.size();) {
    std::uint32_t c = 0;
    const std::size_t length = decode_utf8(s, i, c);
    if (length == 0) {  // not UTF-8: one replacement character per bad byte
      append_utf8(out, 0xFFFD);
      ++i;
      continue;
    }
    i += length;
    switch (c) {
      case '&': out += "&amp;"; continue;
      case '<': out += "&lt;"; continue;
      case '>': out += "&gt;"; continue;  // also keeps "]]>" out of the text
      case '"': out += in_attribute ? "&quot;" : "\""; continue;
      case '\'': out += in_attribute ? "&#39;" : "'"; continue;
      case '\t': out += in_attribute ? "&#9;" : "\t"; continue;
      case '\n': out += in_attribute ? "&#10;" : "\n"; continue;
      case '\r': out += "&#13;"; continue;  // a raw CR would be folded into a newline by the parser
      // Data never spells a URL scheme, url( or @import in the page's bytes (it
      // renders the same), so grepping the page for them finds only real references.
      case ':':
        if (s.compare(i, 2, "//") == 0) {
          out += ":&#47;&#47;";
          i += 2;
          continue;
        }
        break;
      case '(':
        if (out.size() >= 3 && (out[out.size() - 1] | 0x20) == 'l' && (out[out.size() - 2] | 0x20) == 'r' &&
            (out[out.size() - 3] | 0x20) == 'u') {
          out += "&#40;";
          continue;
        }
        break;
      case '@': out += "&#64;"; continue;
      default: break;
    }
    if (c < 0x20) append_utf8(out, 0x2400 + c);                           // ␀ ... ␟
    else if (c == 0x7F) append_utf8(out, 0x2421);                         // ␡
    else if ((c >= 0x80 && c <= 0x9F) || c == 0xFFFE || c == 0xFFFF) append_utf8(out, 0xFFFD);
    else if (c >= 0xFDD0 && c <= 0xFDEF) append_utf8(out, 0xFFFD);      // noncharacters: HTML parse errors
    else if ((c & 0xFFFE) == 0xFFFE) append_utf8(out, 0xFFFD);          // U+nFFFE, U+nFFFF
    else out.append(s.data() + i - length, length);
  }
  return out;
}

}  // namespace detail

/// `s` as element content.
inline std::string text(std::string_view s) { return detail::escape(s, false); }

/// `s` inside a double- or single-quoted attribute value.
inline std::string attribute(std::string_view s) { return detail::escape(s, true); }

/// `value` with `digits` significant digits ("%.4g"), "n/a" when not finite.
inline std::string number(double value, int digits = 4) {
  if (!std::isfinite(value)) return "n/a";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*g", digits, value);
  return buffer;
}

/// A fraction as a percentage: 0.25 -> "25%", 0.000123 -> "0.0123%".
inline std::string percent(double fraction, int digits = 3) {
  if (!std::isfinite(fraction)) return "n/a";
  return number(100.0 * fraction, digits) + "%";
}

}  // namespace html
}  // namespace sae
