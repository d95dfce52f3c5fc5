// GlobMatch: the pattern language of Redis's KEYS (`*`, `?`, `[abc]`, `[^a]`,
// `[a-z]`, `\x`), matched byte by byte. Iterative with one backtrack point, so
// a hostile pattern costs O(pattern * key), never exponential time.

#include "kv/kv_store.h"

namespace segwal {
namespace kv {
namespace {

// Matches one character class starting at p[i] == '['. Sets *end to the index
// after the class and returns whether c is in it. An unterminated class runs
// to the end of the pattern (as Redis does).
bool MatchClass(absl::string_view p, size_t i, unsigned char c, size_t* end) {
  ++i;  // past '['
  bool negate = false;
  if (i < p.size() && p[i] == '^') {
    negate = true;
    ++i;
  }
  bool found = false;
  while (i < p.size() && p[i] != ']') {
    if (p[i] == '\\' && i + 1 < p.size()) {
      if (static_cast<unsigned char>(p[i + 1]) == c) found = true;
      i += 2;
    } else if (i + 2 < p.size() && p[i + 1] == '-' && p[i + 2] != ']') {
      unsigned char lo = p[i], hi = p[i + 2];
      if (lo > hi) std::swap(lo, hi);
      if (c >= lo && c <= hi) found = true;
      i += 3;
    } else {
      if (static_cast<unsigned char>(p[i]) == c) found = true;
      ++i;
    }
  }
  *end = i < p.size() ? i + 1 : i;
  return negate ? !found : found;
}

}  // namespace

bool GlobMatch(absl::string_view pattern, absl::string_view key) {
  size_t p = 0, k = 0;
  size_t star_p = absl::string_view::npos, star_k = 0;
  while (k < key.size()) {
    if (p < pattern.size()) {
      const char pc = pattern[p];
      if (pc == '*') {
        while (p < pattern.size() && pattern[p] == '*') ++p;
        if (p == pattern.size()) return true;
        star_p = p;
        star_k = k;
        continue;
      }
      size_t next = p + 1;
      bool ok;
      if (pc == '?') {
        ok = true;
      } else if (pc == '[') {
        ok = MatchClass(pattern, p, static_cast<unsigned char>(key[k]), &next);
      } else if (pc == '\\' && p + 1 < pattern.size()) {
        ok = pattern[p + 1] == key[k];
        next = p + 2;
      } else {
        ok = pc == key[k];
      }
      if (ok) {
        p = next;
        ++k;
        continue;
      }
    }
    if (star_p == absl::string_view::npos) return false;
    p = star_p;
    k = ++star_k;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace kv
}  // namespace segwal
