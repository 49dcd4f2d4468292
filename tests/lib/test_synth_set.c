/* Unit tests of lib/synth_set.c: a set read from the synth keys of a configuration, written on 1
 * and 3 threads into the same files, byte for byte, with the names bio-scan's patterns read;
 * configuration errors name the key. */
#include "bio/synth_set.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

static char dir[] = "/tmp/bio-test-synth-set-XXXXXX";

static const char base[] = "experiment:\n  seed: 42\n"
			   "synth:\n  subjects: 2\n  samples: 2\n  size: 32\n  format: png\n"
			   "  noise: 0.04\n  variation: 1\n  eyelashes: true\n  fingers: [thumb, ring]\n";

/* The bytes of file path (new; *len its size), NULL when absent. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t cap = 0, n = 0;
	for (;;) {
		if (n == cap && !(buf = realloc(buf, cap = cap ? 2 * cap : 4096)))
			break;
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	fclose(f);
	*len = n;
	return buf;
}

static size_t progress_calls, progress_total;
static void count_progress(void *ud, size_t done, size_t total)
{
	(void)ud;
	(void)done;
	progress_calls++;
	progress_total = total;
}

TEST(synth_set_is_the_same_for_any_thread_count)
{
	struct bio_error err = {0};
	struct bio_config *c = bio_config_new();
	CHECK(c && bio_config_load_base(c, "base", base, sizeof base - 1, &err) == 0);
	struct bio_synth_set s;
	CHECK_EQ(bio_synth_set_from_config(&s, c, &err), 0);
	CHECK_EQ((int)s.n_subjects, 2);
	CHECK_EQ(s.n_fingers, 2);
	CHECK(s.png && s.do_iris && s.do_print);
	CHECK_EQ((int)bio_synth_set_series(&s), 6); /* 2 sides x (iris, thumb, ring) */
	char a[512], b[512];
	snprintf(a, sizeof a, "%s/a", dir);
	snprintf(b, sizeof b, "%s/b", dir);
	size_t n_a, n_b;
	s.root = a;
	s.progress = count_progress;
	CHECK_EQ(bio_synth_set_write(&s, 1, &n_a, &err), 0);
	CHECK_EQ((int)progress_calls, 24);
	CHECK_EQ((int)progress_total, 24);
	s.root = b;
	s.progress = NULL;
	CHECK_EQ(bio_synth_set_write(&s, 3, &n_b, &err), 0);
	CHECK_EQ((int)n_a, 2 * 6 * 2);
	CHECK_EQ((int)n_b, (int)n_a);
	static const char *const names[] = {"iris/001_L_01.png", "iris/002_R_02.png",
					    "fingerprint/001_L_thumb_01.png",
					    "fingerprint/002_R_ring_02.png"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char pa[600], pb[600];
		size_t la = 0, lb = 0;
		snprintf(pa, sizeof pa, "%s/%s", a, names[i]);
		snprintf(pb, sizeof pb, "%s/%s", b, names[i]);
		char *da = slurp(pa, &la), *db = slurp(pb, &lb);
		CHECK(da != NULL && db != NULL);
		CHECK(la == lb && la > 0 && da && db && memcmp(da, db, la) == 0);
		free(da);
		free(db);
	}
	/* a bad finger list names the key */
	CHECK_EQ(bio_config_set(c, "synth.fingers=[thumb, thumb]", &err), 0);
	CHECK(bio_synth_set_from_config(&s, c, &err) < 0);
	CHECK(strstr(err.msg, "synth.fingers: invalid or repeated finger 'thumb'") != NULL);
	CHECK_EQ(bio_config_set(c, "synth.format=gif", &err), 0);
	CHECK_EQ(bio_config_set(c, "synth.fingers=[thumb]", &err), 0);
	CHECK(bio_synth_set_from_config(&s, c, &err) < 0);
	CHECK(strstr(err.msg, "--set: synth.format: invalid value 'gif' (expected bmp or png)") !=
	      NULL);
	bio_config_free(c);
}

TEST_MAIN_IN_TMPDIR(dir, TEST_CASE(synth_set_is_the_same_for_any_thread_count))
