/* SPDX-License-Identifier: MIT */
/* What the services check of a client's input; see svc_input.h. */
#include "svc_input.h"

#include <backend/user.h>

#include <sodium.h>
#include <string.h>

#include "error.h"
#include "svc_nfkc.h"
#include "svc_sql.h"
#include "utf8.h"

size_t be__svc_len(const char *s, size_t len, size_t max) {
  return len == BE_NUL_TERMINATED ? strnlen(s, max + 1) : len;
}

int be__svc_str(const char *s, size_t len, const char *field, size_t max, size_t *out_len,
                be_error **err) {
  if (s == NULL) return be__error_field(err, field, "is required");
  size_t n = be__svc_len(s, len, max);
  if (n > max) return be__error_field(err, field, "is longer than %zu bytes", max);
  if (n > 0 && memchr(s, '\0', n) != NULL)
    return be__error_field(err, field, "contains a NUL byte");
  *out_len = n;
  return BE_OK;
}

static int is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

const char *be__svc_trim(const char *s, size_t *len) {
  while (*len > 0 && is_space((unsigned char)s[0])) {
    s++;
    (*len)--;
  }
  while (*len > 0 && is_space((unsigned char)s[*len - 1])) (*len)--;
  return s;
}

/* The number of code points in s, or an error naming field. */
static int count_chars(const char *s, size_t len, const char *field, int flags, size_t *out,
                       be_error **err) {
  const unsigned char *p = (const unsigned char *)s;
  size_t chars = 0;
  for (size_t i = 0; i < len;) {
    uint32_t cp;
    size_t n = be__utf8_decode(p + i, len - i, &cp);
    if (n == 0) return be__error_field(err, field, "is not valid UTF-8");
    if (cp == 0) return be__error_field(err, field, "contains a NUL byte");
    int ctl = cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0);
    /* a carriage return only in a CRLF line break (browsers send those):
     * alone it can overwrite what a terminal or log shows */
    int crlf = cp == '\r' && i + 1 < len && p[i + 1] == '\n';
    if (ctl && !((flags & BE__TEXT_MULTILINE) && (cp == '\n' || cp == '\t' || crlf)))
      return be__error_field(err, field, "contains a control character");
    chars++;
    i += n;
  }
  *out = chars;
  return BE_OK;
}

int be__svc_text(const char *s, size_t len, const char *field, size_t min_chars,
                 size_t max_chars, int flags, const char **out_s, size_t *out_len,
                 be_error **err) {
  if (flags & BE__TEXT_TRIM) s = be__svc_trim(s, &len);
  /* A cheap bound first, so a huge input costs nothing: a code point is at
   * most 4 bytes. */
  if (len > max_chars * 4)
    return be__error_field(err, field, "is longer than %zu characters", max_chars);
  size_t chars = 0;
  int rc = count_chars(s, len, field, flags, &chars, err);
  if (rc != BE_OK) return rc;
  if (chars < min_chars)
    return min_chars == 1 ? be__error_field(err, field, "must not be empty")
                          : be__error_field(err, field, "is shorter than %zu characters",
                                            min_chars);
  if (chars > max_chars)
    return be__error_field(err, field, "is longer than %zu characters", max_chars);
  if (out_s) *out_s = s;
  if (out_len) *out_len = len;
  return BE_OK;
}

/* ---- look-alike emails ----------------------------------------------
 * What backend/user.h lists as refused in an email, beyond ASCII: code
 * points that show as nothing or as a space, that reorder the text, that
 * are compatibility forms of ASCII, or decomposed accents (each of which
 * would let a second account look exactly like an existing one, since
 * uniqueness compares bytes), and labels whose letters mix scripts that
 * share look-alikes or are all Cyrillic look-alikes of Latin letters. */

typedef struct cp_range {
  uint32_t lo, hi;
} cp_range;

static int in_ranges(uint32_t cp, const cp_range *r, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (cp >= r[i].lo && cp <= r[i].hi) return 1;
  return 0;
}
#define IN(cp, table) in_ranges((cp), (table), sizeof(table) / sizeof(table)[0])

/* Unicode spaces (Zs, Zl, Zp) and blanks that render as one. */
static const cp_range SPACES[] = {
  {0xA0, 0xA0},
  {0x1680, 0x1680},
  {0x2000, 0x200A},
  {0x2028, 0x2029},
  {0x202F, 0x202F},
  {0x205F, 0x205F},
  {0x2800, 0x2800},
  {0x3000, 0x3000},
};
/* Bidirectional controls. */
static const cp_range BIDI[] = {
  {0x61C, 0x61C},
  {0x200E, 0x200F},
  {0x202A, 0x202E},
  {0x2066, 0x2069},
};
/* Format characters (Cf), default-ignorable code points (invisible: soft
 * hyphen, joiners, fillers, variation selectors, tags), private use and
 * noncharacters. */
static const cp_range INVISIBLE[] = {
  {0xAD, 0xAD},
  {0x34F, 0x34F},
  {0x600, 0x605},
  {0x6DD, 0x6DD},
  {0x70F, 0x70F},
  {0x890, 0x891},
  {0x8E2, 0x8E2},
  {0x115F, 0x1160},
  {0x17B4, 0x17B5},
  {0x180B, 0x180F},
  {0x200B, 0x200D},
  {0x2060, 0x2065},
  {0x206A, 0x206F},
  {0x3164, 0x3164},
  {0xE000, 0xF8FF},
  {0xFDD0, 0xFDEF},
  {0xFE00, 0xFE0F},
  {0xFEFF, 0xFEFF},
  {0xFFA0, 0xFFA0},
  {0xFFF0, 0xFFFB},
  {0x110BD, 0x110BD},
  {0x110CD, 0x110CD},
  {0x13430, 0x1343F},
  {0x1BCA0, 0x1BCA3},
  {0x1D173, 0x1D17A},
  {0xE0000, 0xE0FFF},
  {0xF0000, 0x10FFFF},
};
/* Compatibility forms that Unicode folds (NFKC) to other letters and
 * digits: super- and subscripts, letterlike symbols (the Kelvin sign),
 * enclosed alphanumerics, squared CJK abbreviations, ligatures, small and
 * vertical forms, fullwidth and halfwidth forms, mathematical letters. */
static const cp_range COMPAT[] = {
  {0x2070, 0x209F},
  {0x2100, 0x214F},
  {0x2460, 0x24FF},
  {0x3002, 0x3002}, /* ideographic full stop: IDNA (UTS #46) maps it to '.' */
  {0x3200, 0x33FF},
  {0xFB00, 0xFB4F},
  {0xFE10, 0xFE1F},
  {0xFE30, 0xFE6F},
  {0xFF00, 0xFFEF},
  {0x1D400, 0x1D7FF},
  {0x1F100, 0x1F1FF},
};
/* Combining diacritical marks: a decomposed accent looks exactly like the
 * precomposed letter (NFD against NFC). */
static const cp_range COMBINING[] = {
  {0x300, 0x36F},
  {0x1AB0, 0x1AFF},
  {0x1DC0, 0x1DFF},
  {0x20D0, 0x20FF},
  {0xFE20, 0xFE2F},
};

/* The message for a code point an email may not hold, or NULL. */
static const char *refused_char(uint32_t cp) {
  if (cp < 0x80) return NULL;
  if (IN(cp, SPACES)) return "contains a Unicode space";
  if (IN(cp, BIDI)) return "contains a bidirectional control character";
  if (IN(cp, INVISIBLE) || (cp & 0xFFFE) == 0xFFFE)
    return "contains an invisible, format or private-use character";
  if (IN(cp, COMPAT)) return "contains a fullwidth, ligature or other compatibility form";
  if (IN(cp, COMBINING)) return "contains a combining accent: use the precomposed letter";
  /* the rest of what NFKC folds: U+2024 ONE DOT LEADER is ".", U+00B5
   * MICRO SIGN is Greek mu */
  if (be__svc_nfkc_changes(cp)) return "contains a compatibility form that Unicode folds (NFKC) to another character";
  return NULL;
}

/* Scripts that share look-alike letters: a label may use one of them. */
#define SCRIPT_LATIN 0x1
#define SCRIPT_GREEK 0x2
#define SCRIPT_CYRILLIC 0x4
#define SCRIPT_ARMENIAN 0x8
#define SCRIPT_CHEROKEE 0x10

static const cp_range LATIN[] = {
  {'a', 'z'},
  {0xC0, 0xD6},
  {0xD8, 0xF6},
  {0xF8, 0x2AF},
  {0x1D00, 0x1D7F},
  {0x1E00, 0x1EFF},
  {0x2C60, 0x2C7F},
  {0xA720, 0xA7FF},
  {0xAB30, 0xAB6F},
};
static const cp_range GREEK[] = {{0x370, 0x3FF}, {0x1F00, 0x1FFF}};
static const cp_range CYRILLIC[] = {
  {0x400, 0x52F},
  {0x1C80, 0x1C8F},
  {0x2DE0, 0x2DFF},
  {0xA640, 0xA69F},
};
static const cp_range ARMENIAN[] = {{0x531, 0x58F}};
static const cp_range CHEROKEE[] = {{0x13A0, 0x13FF}, {0xAB70, 0xABBF}};

/* Cyrillic letters that look like Latin ones (both cases). */
static const uint16_t CYRILLIC_LOOKALIKES[] = {
  0x405,
  0x406,
  0x408,
  0x410,
  0x412,
  0x415,
  0x41A,
  0x41C,
  0x41D,
  0x41E,
  0x420,
  0x421,
  0x422,
  0x425,
  0x430,
  0x435,
  0x43E,
  0x440,
  0x441,
  0x443,
  0x445,
  0x455,
  0x456,
  0x458,
  0x474,
  0x475,
  0x4AE,
  0x4AF,
  0x4BA,
  0x4BB,
  0x4C0,
  0x4CF,
  0x500,
  0x501,
  0x51A,
  0x51B,
  0x51C,
  0x51D,
};

static int script_of(uint32_t cp) {
  if (IN(cp, LATIN)) return SCRIPT_LATIN; /* the email is lower-cased: no 'A'..'Z' */
  if (cp < 0x370) return 0;
  if (IN(cp, GREEK)) return SCRIPT_GREEK;
  if (IN(cp, CYRILLIC)) return SCRIPT_CYRILLIC;
  if (IN(cp, ARMENIAN)) return SCRIPT_ARMENIAN;
  if (IN(cp, CHEROKEE)) return SCRIPT_CHEROKEE;
  return 0;
}

static int cyrillic_lookalike(uint32_t cp) {
  for (size_t i = 0; i < sizeof CYRILLIC_LOOKALIKES / sizeof CYRILLIC_LOOKALIKES[0]; i++)
    if (cp == CYRILLIC_LOOKALIKES[i]) return 1;
  return 0;
}

/* One label (between dots, or the part before the '@'): the scripts of
 * its letters, and whether each is a Cyrillic look-alike of a Latin one. */
typedef struct label {
  int scripts;
  int letters;
  int lookalikes;
} label;

static int label_end(label *l, be_error **err) {
  int scripts = l->scripts, mixed = scripts & (scripts - 1);
  int spoof = scripts == SCRIPT_CYRILLIC && l->letters == l->lookalikes;
  memset(l, 0, sizeof *l);
  if (mixed)
    return be__error_field(err, "email",
                           "mixes Latin, Greek, Cyrillic, Armenian or Cherokee letters in one part");
  if (spoof)
    return be__error_field(err, "email",
                           "is written in Cyrillic letters that all look like Latin ones");
  return BE_OK;
}

/* The look-alike rules over a lower-cased email (valid UTF-8). */
static int check_lookalikes(const char *s, size_t len, be_error **err) {
  label l = {0, 0, 0};
  for (size_t i = 0; i < len;) {
    uint32_t cp = 0;
    size_t n = be__utf8_decode((const unsigned char *)s + i, len - i, &cp);
    i += n ? n : 1;
    const char *why = refused_char(cp);
    if (why) return be__error_field(err, "email", "%s", why);
    int rc = cp == '.' || cp == '@' ? label_end(&l, err) : BE_OK;
    if (rc != BE_OK) return rc;
    int script = script_of(cp);
    l.scripts |= script;
    l.letters += script != 0;
    l.lookalikes += script == SCRIPT_CYRILLIC && cyrillic_lookalike(cp);
  }
  return label_end(&l, err);
}

/* The domain after the '@' of a lower-cased email: not empty, no leading,
 * trailing or doubled dot, no C1 control (bytes C2 80..C2 9F). */
static int check_domain(const char *out, size_t len, size_t at, be_error **err) {
  const char *dom = out + at + 1;
  size_t dlen = len - at - 1;
  if (dlen == 0 || dom[0] == '.' || dom[dlen - 1] == '.' || strstr(dom, "..") != NULL)
    return be__error_field(err, "email", "has an invalid domain");
  for (size_t i = 0; i + 1 < len; i++)
    if ((unsigned char)out[i] == 0xc2 && (unsigned char)out[i + 1] < 0xa0)
      return be__error_field(err, "email", "contains a space or control character");
  return BE_OK;
}

int be__svc_email(const char *s, size_t len, char *out, size_t *out_len, be_error **err) {
  s = be__svc_trim(s, &len);
  if (len == 0) return be__error_field(err, "email", "must not be empty");
  if (len > BE_USER_EMAIL_MAX)
    return be__error_field(err, "email", "is longer than %d bytes", BE_USER_EMAIL_MAX);
  if (!be__utf8_valid(s, len)) return be__error_field(err, "email", "is not valid UTF-8");
  size_t at = len, ats = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= 0x20 || c == 0x7f)
      return be__error_field(err, "email", "contains a space or control character");
    if (c == '@') {
      ats++;
      at = i;
    }
    out[i] = (char)be__svc_lower(c);
  }
  out[len] = '\0';
  if (ats != 1) return be__error_field(err, "email", "must contain exactly one '@'");
  if (at == 0 || at > 64)
    return be__error_field(err, "email", "must have 1..64 bytes before the '@'");
  int rc = check_domain(out, len, at, err);
  if (rc == BE_OK) rc = check_lookalikes(out, len, err);
  if (rc == BE_OK) *out_len = len;
  return rc;
}

int be__svc_check_version(uint32_t version, uint32_t known, const char *what, be_error **err) {
  if (version == known) return BE_OK;
  return be__error_set(err, BE_E_MISUSE, "%s: unknown version %u", what, (unsigned)version);
}

int be__svc_check_id(int64_t id, const char *field, be_error **err) {
  if (id <= 0) return be__error_field(err, field, "must be a positive id");
  return BE_OK;
}

int be__svc_check_actor(int64_t actor_id, be_error **err) {
  if (actor_id < 0) return be__error_field(err, "actor_id", "must be 0 (the system) or a user id");
  return BE_OK;
}

void be__svc_cursor_encode(char *out, uint8_t tag, int64_t value) {
  unsigned char bin[9];
  uint64_t v = (uint64_t)value;
  bin[0] = tag;
  for (int i = 0; i < 8; i++) bin[1 + i] = (unsigned char)(v >> (56 - 8 * i));
  sodium_bin2base64(out, BE__CURSOR_MAX + 1, bin, sizeof bin,
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

int be__svc_cursor_decode(const char *s, size_t len, uint8_t tag, int64_t *out, be_error **err) {
  /* A NUL byte inside len is refused by the base64url decoder below. */
  len = be__svc_len(s, len, BE__CURSOR_MAX);
  if (len == 0 || len > BE__CURSOR_MAX) return be__error_field(err, "cursor", "is malformed");
  unsigned char bin[16];
  size_t bin_len = 0;
  const char *end = NULL;
  if (sodium_base642bin(bin, sizeof bin, s, len, NULL, &bin_len, &end,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
      end != s + len || bin_len != 9 || bin[0] != tag)
    return be__error_field(err, "cursor", "is malformed");
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | bin[1 + i];
  if ((int64_t)v < 0) return be__error_field(err, "cursor", "is malformed");
  *out = (int64_t)v;
  return BE_OK;
}

int be__svc_field_error(int rc, be_error **err, const char *field, const char *why,
                        const char *msg) {
  if (err == NULL || *err == NULL) return rc;
  be_error *cause = *err;
  *err = NULL;
  be__error_wrap(err, rc, cause, "%s", msg);
  if (!be__error_is_static(*err)) be_error_add_field(*err, field, why);
  return be_error_code(*err);
}

int be__svc_json_object(be_conn *conn, const char *sql, const char *json, size_t len,
                        const char *field, be_error **err) {
  int64_t is_object = 0;
  int rc = be__svc_ints(conn, &is_object, 1, err, sql, "s", json, len);
  /* PostgreSQL: text that is not JSON fails the cast to jsonb */
  if (rc == BE_E_VALIDATION) {
    if (err) {
      be_error_free(*err);
      *err = NULL;
    }
    return be__error_field(err, field, "must be a JSON object");
  }
  /* Any other failure is the database's (json_type() only ever sees text
   * json_valid() accepted): report it as such, never as the caller's 400. */
  if (rc == BE_DONE) return be__error_set(err, BE_E_INTERNAL, "JSON check returned no row");
  if (rc != BE_ROW) return rc;
  return is_object == 1 ? BE_OK : be__error_field(err, field, "must be a JSON object");
}
