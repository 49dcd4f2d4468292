/* Unit tests of lib/str.c (heap-formatted strings). */
#include <stdlib.h>
#include <string.h>

#include "bio/str.h"
#include "test.h"

TEST(fmt_formats_into_a_new_string)
{
	char *s = bio_str_fmt("%s/%d-%s", "runs", 42, "x");
	CHECK(s != NULL);
	CHECK_STR(s, "runs/42-x");
	free(s);
	s = bio_str_fmt("%s", "");
	CHECK(s != NULL && s[0] == '\0');
	free(s);
	/* longer than any fixed buffer a caller might have had */
	char big[5000];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	s = bio_str_fmt("<%s>", big);
	CHECK(s != NULL && strlen(s) == sizeof big + 1 && s[0] == '<' && s[sizeof big] == '>');
	free(s);
}

int main(void)
{
	RUN(fmt_formats_into_a_new_string);
	return test_summary();
}
