/* escape.h - untrusted bytes made safe to print. */
#ifndef BOTTLE_ESCAPE_H
#define BOTTLE_ESCAPE_H

#include <stddef.h>

/* Copies text into out (NUL-terminated) so that nothing in it can drive a terminal:
 * control bytes, DEL, backslash and invalid UTF-8 become escapes (\n, \t, \r, \\, \x1b);
 * valid UTF-8 beyond ASCII is kept. Truncates with "..." when out is too small. Returns out. */
char *escape_text(char *out, size_t outsz, const char *text, size_t len);

#endif
