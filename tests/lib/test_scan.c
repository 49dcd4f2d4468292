/* Unit tests for lib/scan.c: natural order, spec validation (regex, fields vs groups, identity
 * fields), parsing and pairing by key, duplicates, chimeric pairing, stratified and disjoint
 * splits (fractions, at least one training sample, determinism, seed dependence), and the folder
 * walk (sorting, nesting, symlinks, missing folders). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bio/scan.h"
#include "test.h"

static const char *const IRIS_FIELDS[] = {"subject", "side", "sample"};
static const char *const FP_FIELDS[] = {"subject", "side", "finger", "sample"};
static const char *const IDENT[] = {"subject", "side"};
static const char *const PAIR[] = {"sample"};

#define IRIS_RE "^([0-9]+)_([LR])_([0-9]+)\\.(bmp|png)$"
#define FP_RE "^([0-9]+)_([LR])_([a-z]+)_([0-9]+)\\.(bmp|BMP|png)$"

/* A modality named as its folder, with the identity and pairing fields of both test layouts. */
static struct bio_scan_modality_spec spec(const char *name, const char *root, const char *pattern,
					  const char *const *fields, size_t n_fields)
{
	struct bio_scan_modality_spec sp = {
		.name = name, .root = root, .dir = name, .pattern = pattern,
		.fields = fields, .n_fields = n_fields, .identity = IDENT, .n_identity = 2,
		.pair_by = PAIR, .n_pair_by = 1,
	};
	return sp;
}

static struct bio_scan_modality_spec iris_spec(const char *root)
{
	return spec("iris", root, IRIS_RE, IRIS_FIELDS, 3);
}

static struct bio_scan_modality_spec fp_spec(const char *root)
{
	return spec("fingerprint", root, FP_RE, FP_FIELDS, 4);
}

static struct bio_scan *new_scan(int chimeric, int mode, double val, double test, uint64_t seed)
{
	struct bio_scan_options o = {.chimeric = chimeric,
				     .split_mode = (enum bio_scan_split_mode)mode,
				     .val = val,
				     .test = test,
				     .seed = seed};
	struct bio_error err = {0};
	struct bio_scan *s = bio_scan_new(&o, &err);
	CHECK(s != NULL);
	return s;
}

static struct bio_scan *two_modalities(int chimeric, int mode, double val, double test,
				       uint64_t seed)
{
	struct bio_scan *s = new_scan(chimeric, mode, val, test, seed);
	struct bio_error err = {0};
	struct bio_scan_modality_spec a = iris_spec("data"), b = fp_spec("data");
	CHECK_EQ(bio_scan_add_modality(s, &a, NULL, &err), 0);
	CHECK_EQ(bio_scan_add_modality(s, &b, NULL, &err), 0);
	return s;
}

static void add(struct bio_scan *s, size_t m, const char *rel, int want)
{
	struct bio_error err = {0};
	int rc = bio_scan_add_path(s, m, rel, &err);
	if (rc != want)
		fprintf(stderr, "add_path(%zu, %s) = %d, want %d (%s)\n", m, rel, rc, want, err.msg);
	CHECK_EQ(rc, want);
}

/* A file to add: modality, relative path, the add_path status wanted. */
struct added {
	size_t m;
	const char *rel;
	int want;
};

static void add_all(struct bio_scan *s, const struct added *files, size_t n)
{
	for (size_t i = 0; i < n; i++)
		add(s, files[i].m, files[i].rel, files[i].want);
}

/* subjects x sides x samples files of both modalities. */
static void add_grid(struct bio_scan *s, int subjects, int samples, int skip_fp_sample)
{
	char name[128];
	for (int sub = 1; sub <= subjects; sub++)
		for (int side = 0; side < 2; side++)
			for (int k = 1; k <= samples; k++) {
				snprintf(name, sizeof name, "%03d_%c_%02d.bmp", sub, "LR"[side], k);
				add(s, 0, name, 1);
				if (k == skip_fp_sample)
					continue;
				snprintf(name, sizeof name, "%03d_%c_thumb_%02d.BMP", sub,
					 "LR"[side], k);
				add(s, 1, name, 1);
			}
}

TEST(natural_order)
{
	CHECK(bio_scan_strcmp_natural("2", "10") < 0);
	CHECK(bio_scan_strcmp_natural("10", "2") > 0);
	CHECK(bio_scan_strcmp_natural("a2b", "a10b") < 0);
	CHECK(bio_scan_strcmp_natural("abc", "abd") < 0);
	CHECK(bio_scan_strcmp_natural("abc", "abc") == 0);
	CHECK(bio_scan_strcmp_natural("ab", "abc") < 0);
	CHECK(bio_scan_strcmp_natural("101_L", "101_R") < 0);
	CHECK(bio_scan_strcmp_natural("9_L", "101_L") < 0);
	/* numerically equal, different text: ordered, never equal, antisymmetric */
	int c = bio_scan_strcmp_natural("01", "1");
	CHECK(c != 0);
	CHECK_EQ(bio_scan_strcmp_natural("1", "01"), -c);
	CHECK(bio_scan_strcmp_natural("007x", "8x") < 0);
	CHECK(bio_scan_strcmp_natural("", "a") < 0);
}

TEST(spec_errors)
{
	struct bio_scan *s = new_scan(0, BIO_SCAN_STRATIFIED, 0.2, 0, 1);
	struct bio_error err = {0};
	enum bio_scan_spec_part part = BIO_SCAN_PART_NONE;

	struct bio_scan_modality_spec sp = iris_spec("data");
	sp.pattern = "^([0-9]+_(";
	CHECK_EQ(bio_scan_add_modality(s, &sp, &part, &err), BIO_EINVAL);
	CHECK_EQ(part, BIO_SCAN_PART_PATTERN);
	CHECK(strstr(err.msg, "iris: pattern: invalid regular expression") != NULL);

	/* four named fields, three groups */
	sp = iris_spec("data");
	static const char *const four[] = {"subject", "side", "sample", "ext"};
	sp.pattern = "^([0-9]+)_([LR])_([0-9]+)\\.bmp$";
	sp.fields = four;
	sp.n_fields = 4;
	CHECK_EQ(bio_scan_add_modality(s, &sp, &part, &err), BIO_EINVAL);
	CHECK_EQ(part, BIO_SCAN_PART_FIELDS);
	CHECK(strstr(err.msg, "names 4 capture groups but the pattern has 3") != NULL);
	CHECK(strstr(err.msg, "'ext'") != NULL);

	sp = iris_spec("data");
	static const char *const bad_ident[] = {"subject", "finger"};
	sp.identity = bad_ident;
	CHECK_EQ(bio_scan_add_modality(s, &sp, &part, &err), BIO_EINVAL);
	CHECK_EQ(part, BIO_SCAN_PART_IDENTITY);
	CHECK(strstr(err.msg, "'finger'") != NULL);

	sp = iris_spec("data");
	static const char *const bad_pair[] = {"session"};
	sp.pair_by = bad_pair;
	CHECK_EQ(bio_scan_add_modality(s, &sp, &part, &err), BIO_EINVAL);
	CHECK_EQ(part, BIO_SCAN_PART_PAIR_BY);

	sp = iris_spec("data");
	sp.name = "label";
	CHECK_EQ(bio_scan_add_modality(s, &sp, &part, &err), BIO_EINVAL);
	CHECK_EQ(part, BIO_SCAN_PART_NAME);

	sp = iris_spec("data");
	sp.n_identity = 0;
	CHECK_EQ(bio_scan_add_modality(s, &sp, &part, &err), BIO_EINVAL);

	/* a valid one after all the failures, then the same name again */
	sp = iris_spec("data");
	CHECK_EQ(bio_scan_add_modality(s, &sp, &part, &err), 0);
	CHECK_EQ(bio_scan_n_modalities(s), 1);
	CHECK_EQ(bio_scan_add_modality(s, &sp, &part, &err), BIO_EINVAL);
	CHECK(strstr(err.msg, "twice") != NULL);
	bio_scan_free(s);

	struct bio_scan_options o = {.val = 0.7, .test = 0.5};
	CHECK(bio_scan_new(&o, &err) == NULL);
	CHECK(strstr(err.msg, "sum") != NULL);
}

TEST(pair_by_key)
{
	struct bio_scan *s = two_modalities(0, BIO_SCAN_STRATIFIED, 0.25, 0.0, 7);
	struct bio_error err = {0};
	/* 10 subjects x 2 sides x 4 samples; fingerprint sample 3 missing everywhere */
	add_grid(s, 10, 4, 3);
	add(s, 0, "notes.txt", 0);
	add(s, 1, "sub/001_L_thumb_01.BMP", 0); /* the pattern is anchored at the folder */
	add(s, 1, "001_X_thumb_01.BMP", 0);
	CHECK_EQ(bio_scan_build(s, &err), 0);
	CHECK_EQ(bio_scan_n_files(s), 80 + 60 + 3);
	CHECK_EQ(bio_scan_n_unparsed(s), 3);
	CHECK_EQ(bio_scan_n_unpaired(s), 20);
	CHECK_EQ(bio_scan_n_duplicates(s), 0);
	CHECK_EQ(bio_scan_n_records(s), 60);
	CHECK_EQ(bio_scan_n_labels(s), 20);
	CHECK_STR(bio_scan_label_name(s, 0), "001_L");
	CHECK_STR(bio_scan_label_name(s, 1), "001_R");
	CHECK_STR(bio_scan_label_name(s, 19), "010_R");
	char buf[256];
	for (size_t i = 0; i < bio_scan_n_unpaired(s); i++) {
		enum bio_scan_unpaired_reason why;
		unsigned missing;
		bio_scan_unpaired_path(s, i, buf, sizeof buf, &why, &missing);
		CHECK(strstr(buf, "data/iris/") == buf);
		CHECK(strstr(buf, "_03.bmp") != NULL);
		CHECK_EQ(why, BIO_SCAN_NO_PARTNER);
		CHECK_EQ(missing, 2u); /* no fingerprint */
	}
	/* records: sorted by identity then sample, labels non-decreasing, keys agree */
	size_t prev = 0;
	for (size_t r = 0; r < bio_scan_n_records(s); r++) {
		size_t l = bio_scan_record_label(s, r);
		CHECK(l >= prev);
		prev = l;
		CHECK_STR(bio_scan_record_key(s, r, 0), bio_scan_record_key(s, r, 1));
		char ip[256], fp[256];
		bio_scan_record_path(s, r, 0, ip, sizeof ip);
		bio_scan_record_path(s, r, 1, fp, sizeof fp);
		const char *ident = bio_scan_label_name(s, l);
		CHECK(strncmp(ip + strlen("data/iris/"), ident, strlen(ident)) == 0);
		CHECK(strncmp(fp + strlen("data/fingerprint/"), ident, strlen(ident)) == 0);
	}
	bio_scan_record_path(s, 0, 1, buf, sizeof buf);
	CHECK_STR(buf, "data/fingerprint/001_L_thumb_01.BMP");
	bio_scan_record_path(s, 2, 0, buf, sizeof buf);
	CHECK_STR(buf, "data/iris/001_L_04.bmp");
	bio_scan_unparsed_path(s, 0, buf, sizeof buf);
	CHECK_STR(buf, "data/iris/notes.txt");
	bio_scan_free(s);
}

TEST(labels_natural_and_single_modality)
{
	struct bio_scan *s = new_scan(0, BIO_SCAN_STRATIFIED, 0.0, 0.0, 1);
	struct bio_error err = {0};
	static const char *const f[] = {"subject", "sample"};
	static const char *const id[] = {"subject"};
	static const char *const pk[] = {"sample"};
	struct bio_scan_modality_spec sp = {
		.name = "fingerprint", .root = "r", .dir = "", .pattern = "^([0-9]+)_([0-9]+)\\.tif$",
		.fields = f, .n_fields = 2, .identity = id, .n_identity = 1, .pair_by = pk,
		.n_pair_by = 1,
	};
	CHECK_EQ(bio_scan_add_modality(s, &sp, NULL, &err), 0);
	static const struct added files[] = {{0, "10_1.tif", 1}, {0, "9_2.tif", 1},
		{0, "9_10.tif", 1}, {0, "9_1.tif", 1}, {0, "100_1.tif", 1}};
	add_all(s, files, sizeof files / sizeof *files);
	CHECK_EQ(bio_scan_build(s, &err), 0);
	CHECK_EQ(bio_scan_n_records(s), 5);
	CHECK_EQ(bio_scan_n_labels(s), 3);
	CHECK_STR(bio_scan_label_name(s, 0), "9");
	CHECK_STR(bio_scan_label_name(s, 1), "10");
	CHECK_STR(bio_scan_label_name(s, 2), "100");
	CHECK_STR(bio_scan_record_key(s, 0, 0), "1");
	CHECK_STR(bio_scan_record_key(s, 1, 0), "2");
	CHECK_STR(bio_scan_record_key(s, 2, 0), "10");
	char buf[64];
	bio_scan_record_path(s, 0, 0, buf, sizeof buf);
	CHECK_STR(buf, "r/9_1.tif"); /* empty dir: files straight under the root */
	CHECK_EQ(bio_scan_split_count(s, BIO_SCAN_TRAIN), 5);
	bio_scan_free(s);
}

TEST(duplicates)
{
	struct bio_scan *s = two_modalities(0, BIO_SCAN_STRATIFIED, 0.0, 0.0, 1);
	struct bio_error err = {0};
	add_grid(s, 2, 3, 0);
	/* a second finger per hand: same identity and sample as the thumb */
	add(s, 1, "001_L_index_01.BMP", 1);
	add(s, 1, "002_R_index_03.BMP", 1);
	CHECK_EQ(bio_scan_build(s, &err), 0);
	CHECK_EQ(bio_scan_n_duplicates(s), 2);
	CHECK_EQ(bio_scan_n_records(s), 12);
	char buf[256], kept[256];
	bio_scan_duplicate_path(s, 0, buf, sizeof buf, kept, sizeof kept);
	/* sorted by path within a key: index < thumb, so the index file is kept */
	CHECK_STR(buf, "data/fingerprint/001_L_thumb_01.BMP");
	CHECK_STR(kept, "data/fingerprint/001_L_index_01.BMP");
	bio_scan_free(s);
}

static void splits_of(struct bio_scan *s, int *out)
{
	for (size_t r = 0; r < bio_scan_n_records(s); r++)
		out[r] = (int)bio_scan_record_split(s, r);
}

TEST(stratified_split)
{
	int a[400], b[400], c[400];
	struct bio_error err = {0};
	struct bio_scan *s1 = two_modalities(0, BIO_SCAN_STRATIFIED, 0.2, 0.1, 7);
	struct bio_scan *s2 = two_modalities(0, BIO_SCAN_STRATIFIED, 0.2, 0.1, 7);
	struct bio_scan *s3 = two_modalities(0, BIO_SCAN_STRATIFIED, 0.2, 0.1, 8);
	add_grid(s1, 20, 10, 0);
	add_grid(s2, 20, 10, 0);
	add_grid(s3, 20, 10, 0);
	CHECK_EQ(bio_scan_build(s1, &err), 0);
	CHECK_EQ(bio_scan_build(s2, &err), 0);
	CHECK_EQ(bio_scan_build(s3, &err), 0);
	CHECK_EQ(bio_scan_n_records(s1), 400);
	splits_of(s1, a);
	splits_of(s2, b);
	splits_of(s3, c);
	CHECK(memcmp(a, b, sizeof a) == 0);
	CHECK(memcmp(a, c, sizeof a) != 0);
	/* per identity of 10 samples: 2 val, 1 test, 7 train */
	for (size_t l = 0; l < 40; l++) {
		int n[3] = {0, 0, 0};
		for (size_t r = 0; r < 400; r++)
			if (bio_scan_record_label(s1, r) == l)
				n[a[r]]++;
		CHECK_EQ(n[BIO_SCAN_TRAIN], 7);
		CHECK_EQ(n[BIO_SCAN_VAL], 2);
		CHECK_EQ(n[BIO_SCAN_TEST], 1);
	}
	CHECK_EQ(bio_scan_split_count(s1, BIO_SCAN_VAL), 80);
	CHECK_EQ(bio_scan_split_count(s1, BIO_SCAN_TEST), 40);
	bio_scan_free(s1);
	bio_scan_free(s2);
	bio_scan_free(s3);

	/* tiny identities keep one training sample each */
	struct bio_scan *s = two_modalities(0, BIO_SCAN_STRATIFIED, 0.5, 0.5, 3);
	add_grid(s, 3, 1, 0);
	static const struct added files[] = {{0, "004_L_01.bmp", 1}, {0, "004_L_02.bmp", 1},
		{1, "004_L_thumb_01.BMP", 1}, {1, "004_L_thumb_02.BMP", 1}};
	add_all(s, files, sizeof files / sizeof *files);
	CHECK_EQ(bio_scan_build(s, &err), 0);
	for (size_t r = 0; r < bio_scan_n_records(s); r++)
		if (strcmp(bio_scan_label_name(s, bio_scan_record_label(s, r)), "004_L") != 0)
			CHECK_EQ(bio_scan_record_split(s, r), BIO_SCAN_TRAIN);
	CHECK_EQ(bio_scan_split_count(s, BIO_SCAN_TRAIN), 7);
	CHECK_EQ(bio_scan_split_count(s, BIO_SCAN_VAL) + bio_scan_split_count(s, BIO_SCAN_TEST),
		 1);
	bio_scan_free(s);
}

TEST(disjoint_split)
{
	struct bio_error err = {0};
	struct bio_scan *s = two_modalities(0, BIO_SCAN_DISJOINT, 0.25, 0.25, 11);
	add_grid(s, 10, 5, 0);
	CHECK_EQ(bio_scan_build(s, &err), 0);
	CHECK_EQ(bio_scan_n_labels(s), 20);
	int label_split[20];
	for (int i = 0; i < 20; i++)
		label_split[i] = -1;
	for (size_t r = 0; r < bio_scan_n_records(s); r++) {
		size_t l = bio_scan_record_label(s, r);
		int sp = (int)bio_scan_record_split(s, r);
		if (label_split[l] < 0)
			label_split[l] = sp;
		CHECK_EQ(label_split[l], sp); /* one split per identity */
	}
	int n[3] = {0, 0, 0};
	for (int i = 0; i < 20; i++)
		n[label_split[i]]++;
	CHECK_EQ(n[BIO_SCAN_VAL], 5);
	CHECK_EQ(n[BIO_SCAN_TEST], 5);
	CHECK_EQ(n[BIO_SCAN_TRAIN], 10);
	bio_scan_free(s);

	/* one identity: it trains */
	s = two_modalities(0, BIO_SCAN_DISJOINT, 0.5, 0.5, 11);
	add(s, 0, "001_L_01.bmp", 1);
	add(s, 1, "001_L_thumb_01.BMP", 1);
	CHECK_EQ(bio_scan_build(s, &err), 0);
	CHECK_EQ(bio_scan_split_count(s, BIO_SCAN_TRAIN), 1);
	bio_scan_free(s);
}

TEST(chimeric)
{
	struct bio_error err = {0};
	struct bio_scan *s = new_scan(1, BIO_SCAN_STRATIFIED, 0.0, 0.0, 1);
	static const char *const f[] = {"subject", "sample"};
	static const char *const id[] = {"subject"};
	static const char *const pk[] = {"sample"};
	struct bio_scan_modality_spec ir = iris_spec("synth");
	struct bio_scan_modality_spec fp = {
		.name = "fingerprint", .root = "fvc", .dir = ".", .pattern = "^([0-9]+)_([0-9]+)\\.tif$",
		.fields = f, .n_fields = 2, .identity = id, .n_identity = 1, .pair_by = pk,
		.n_pair_by = 1,
	};
	CHECK_EQ(bio_scan_add_modality(s, &ir, NULL, &err), 0);
	CHECK_EQ(bio_scan_add_modality(s, &fp, NULL, &err), 0);
	char name[64];
	/* iris: 2 subjects x 2 eyes x 5 samples = 4 identities; fingerprint: 3 fingers x 4 */
	for (int sub = 1; sub <= 2; sub++)
		for (int e = 0; e < 2; e++)
			for (int k = 1; k <= 5; k++) {
				snprintf(name, sizeof name, "%03d_%c_%02d.png", sub, "LR"[e], k);
				add(s, 0, name, 1);
			}
	for (int fg = 101; fg <= 103; fg++)
		for (int k = 1; k <= 4; k++) {
			snprintf(name, sizeof name, "%d_%d.tif", fg, k);
			add(s, 1, name, 1);
		}
	CHECK_EQ(bio_scan_build(s, &err), 0);
	CHECK_EQ(bio_scan_n_labels(s), 3);
	CHECK_STR(bio_scan_label_name(s, 0), "001_L+101");
	CHECK_STR(bio_scan_label_name(s, 1), "001_R+102");
	CHECK_STR(bio_scan_label_name(s, 2), "002_L+103");
	CHECK_EQ(bio_scan_n_records(s), 12);
	CHECK_EQ(bio_scan_n_unpaired(s), 3 + 5);
	size_t extra_id = 0, extra_sample = 0;
	for (size_t i = 0; i < bio_scan_n_unpaired(s); i++) {
		enum bio_scan_unpaired_reason why;
		char buf[128];
		bio_scan_unpaired_path(s, i, buf, sizeof buf, &why, NULL);
		if (why == BIO_SCAN_EXTRA_IDENTITY) {
			extra_id++;
			CHECK(strstr(buf, "synth/iris/002_R_") == buf);
		} else {
			extra_sample++;
			CHECK(strstr(buf, "_05.png") != NULL);
		}
	}
	CHECK_EQ(extra_id, 5);
	CHECK_EQ(extra_sample, 3);
	char p[128];
	bio_scan_record_path(s, 5, 0, p, sizeof p);
	CHECK_STR(p, "synth/iris/001_R_02.png");
	bio_scan_record_path(s, 5, 1, p, sizeof p);
	CHECK_STR(p, "fvc/102_2.tif");
	bio_scan_free(s);
}

static void touch(const char *path)
{
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (f)
		fclose(f);
}

TEST(walk)
{
	char tmpl[] = "/tmp/test_scan_XXXXXX";
	char *root = mkdtemp(tmpl);
	CHECK(root != NULL);
	if (!root)
		return;
	char p[512], q[1100];
	const char *dirs[] = {"iris", "iris/sub", "fingerprint", "elsewhere"};
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof p, "%s/%s", root, dirs[i]);
		CHECK_EQ(mkdir(p, 0755), 0);
	}
	/* created in reverse order: the walk must not depend on readdir order */
	for (int k = 4; k >= 1; k--) {
		snprintf(p, sizeof p, "%s/iris/002_R_%02d.bmp", root, k);
		touch(p);
		snprintf(p, sizeof p, "%s/fingerprint/002_R_thumb_%02d.BMP", root, k);
		touch(p);
	}
	snprintf(p, sizeof p, "%s/iris/sub/002_R_05.bmp", root);
	touch(p); /* nested: rel path "sub/..." does not match the anchored pattern */
	snprintf(p, sizeof p, "%s/elsewhere/002_R_thumb_05.BMP", root);
	touch(p);
	snprintf(q, sizeof q, "%s/fingerprint/002_R_thumb_05.BMP", root);
	CHECK_EQ(symlink(p, q), 0); /* link to a file: followed */
	snprintf(p, sizeof p, "%s/elsewhere", root);
	snprintf(q, sizeof q, "%s/iris/linked", root);
	CHECK_EQ(symlink(p, q), 0); /* link to a folder: skipped */
	snprintf(p, sizeof p, "%s/iris/fifo", root);
	CHECK_EQ(mkfifo(p, 0644), 0); /* not a regular file: skipped */

	struct bio_error err = {0};
	struct bio_scan *s = new_scan(0, BIO_SCAN_STRATIFIED, 0.0, 0.0, 1);
	struct bio_scan_modality_spec a = iris_spec(root), b = fp_spec(root);
	CHECK_EQ(bio_scan_add_modality(s, &a, NULL, &err), 0);
	CHECK_EQ(bio_scan_add_modality(s, &b, NULL, &err), 0);
	int rc = bio_scan_walk(s, &err);
	if (rc)
		fprintf(stderr, "walk: %s\n", err.msg);
	CHECK_EQ(rc, 0);
	CHECK_EQ(bio_scan_build(s, &err), 0);
	CHECK_EQ(bio_scan_n_files(s), 10);
	CHECK_EQ(bio_scan_n_records(s), 4);
	CHECK_EQ(bio_scan_n_unparsed(s), 1);
	CHECK_EQ(bio_scan_n_unpaired(s), 1); /* the linked fingerprint 05 */
	CHECK_EQ(bio_scan_n_skipped(s), 2);
	bio_scan_unparsed_path(s, 0, p, sizeof p);
	snprintf(q, sizeof q, "%s/iris/sub/002_R_05.bmp", root);
	CHECK_STR(p, q);
	bio_scan_skipped_path(s, 0, p, sizeof p);
	snprintf(q, sizeof q, "%s/iris/fifo", root);
	CHECK_STR(p, q);
	bio_scan_record_path(s, 3, 0, p, sizeof p);
	snprintf(q, sizeof q, "%s/iris/002_R_04.bmp", root);
	CHECK_STR(p, q);
	bio_scan_free(s);

	/* empty folders: nothing found, nothing paired, no error */
	snprintf(p, sizeof p, "%s/empty", root);
	CHECK_EQ(mkdir(p, 0755), 0);
	snprintf(q, sizeof q, "%s/empty/iris", root);
	CHECK_EQ(mkdir(q, 0755), 0);
	snprintf(q, sizeof q, "%s/empty/fingerprint", root);
	CHECK_EQ(mkdir(q, 0755), 0);
	s = new_scan(0, BIO_SCAN_STRATIFIED, 0.2, 0.0, 1);
	a = iris_spec(p);
	b = fp_spec(p);
	CHECK_EQ(bio_scan_add_modality(s, &a, NULL, &err), 0);
	CHECK_EQ(bio_scan_add_modality(s, &b, NULL, &err), 0);
	CHECK_EQ(bio_scan_walk(s, &err), 0);
	CHECK_EQ(bio_scan_build(s, &err), 0);
	CHECK_EQ(bio_scan_n_files(s), 0);
	CHECK_EQ(bio_scan_n_records(s), 0);
	CHECK_EQ(bio_scan_n_labels(s), 0);
	bio_scan_free(s);

	/* missing folder: "<path>: No such file or directory" */
	s = new_scan(0, BIO_SCAN_STRATIFIED, 0.0, 0.0, 1);
	snprintf(p, sizeof p, "%s/nothere", root);
	a = iris_spec(p);
	CHECK_EQ(bio_scan_add_modality(s, &a, NULL, &err), 0);
	CHECK_EQ(bio_scan_walk(s, &err), BIO_EIO);
	snprintf(q, sizeof q, "%s: %s", p, strerror(ENOENT));
	CHECK_STR(err.msg, q);
	bio_scan_free(s);
	s = new_scan(0, BIO_SCAN_STRATIFIED, 0.0, 0.0, 1);
	a = iris_spec(root);
	a.dir = "eyes/";
	CHECK_EQ(bio_scan_add_modality(s, &a, NULL, &err), 0);
	CHECK_EQ(bio_scan_walk(s, &err), BIO_EIO);
	snprintf(q, sizeof q, "%s/eyes: %s", root, strerror(ENOENT));
	CHECK_STR(err.msg, q);
	snprintf(q, sizeof q, "%s/eyes", root);
	CHECK_STR(bio_scan_modality_base(s, 0), q); /* trailing slash dropped */
	bio_scan_free(s);

	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	CHECK_EQ(system(cmd), 0);
}


static const char BASE_YAML[] =
	"scan:\n"
	"  root: data/synth\n"
	"  modalities: [iris, fingerprint]\n"
	"  iris:\n"
	"    root: \"\"\n"
	"    dir: iris\n"
	"    pattern: '^([0-9]+)_([LR])_([0-9]+)\\.bmp$'\n"
	"    fields: [subject, side, sample]\n"
	"    identity: []\n"
	"    pair_by: []\n"
	"  fingerprint:\n"
	"    root: \"\"\n"
	"    dir: fingerprint\n"
	"    pattern: '^([0-9]+)_([LR])_([a-z]+)_([0-9]+)\\.BMP$'\n"
	"    fields: [subject, side, finger, sample]\n"
	"    identity: []\n"
	"    pair_by: []\n"
	"  identity: [subject, side]\n"
	"  pair_by: [sample]\n"
	"  chimeric: false\n"
	"  split:\n"
	"    mode: stratified\n"
	"    val: 0.2\n"
	"    test: 0.0\n"
	"    seed: 7\n";

static struct bio_config *config_with(const char *overlay)
{
	struct bio_error err = {0};
	struct bio_config *c = bio_config_new();
	CHECK_EQ(bio_config_load_base(c, "base.yaml", BASE_YAML, sizeof BASE_YAML - 1, &err), 0);
	if (overlay) {
		int rc = bio_config_load_overlay(c, "over.yaml", overlay, strlen(overlay), &err);
		if (rc)
			fprintf(stderr, "overlay: %s\n", err.msg);
		CHECK_EQ(rc, 0);
	}
	return c;
}

TEST(from_config)
{
	struct bio_error err = {0};
	struct bio_scan *s = NULL;

	/* defaults; ROOT overrides scan.root */
	struct bio_config *c = config_with(NULL);
	CHECK_EQ(bio_scan_from_config(&s, c, "elsewhere/", &err), 0);
	CHECK_EQ(bio_scan_n_modalities(s), 2);
	CHECK_STR(bio_scan_modality_base(s, 0), "elsewhere/iris");
	CHECK_STR(bio_scan_modality_base(s, 1), "elsewhere/fingerprint");
	add(s, 0, "001_L_01.bmp", 1);
	add(s, 1, "001_L_thumb_01.BMP", 1);
	CHECK_EQ(bio_scan_build(s, &err), 0);
	CHECK_EQ(bio_scan_n_records(s), 1);
	bio_scan_free(s);
	bio_config_free(c);

	/* a chimeric overlay: own fingerprint root, fields, identity and key */
	c = config_with("scan:\n"
			"  chimeric: true\n"
			"  split: {mode: disjoint, val: 0.5}\n"
			"  fingerprint:\n"
			"    root: fvc\n"
			"    dir: \"\"\n"
			"    pattern: '^([0-9]+)_([0-9]+)\\.tif$'\n"
			"    fields: [finger, impression]\n"
			"    identity: [finger]\n"
			"    pair_by: [impression]\n");
	CHECK_EQ(bio_scan_from_config(&s, c, NULL, &err), 0);
	CHECK_STR(bio_scan_modality_base(s, 0), "data/synth/iris");
	CHECK_STR(bio_scan_modality_base(s, 1), "fvc");
	static const struct added files[] = {{0, "001_L_01.bmp", 1}, {0, "001_R_01.bmp", 1},
		{1, "101_1.tif", 1}, {1, "102_1.tif", 1}, {1, "001_L_thumb_01.BMP", 0}};
	add_all(s, files, sizeof files / sizeof *files);
	CHECK_EQ(bio_scan_build(s, &err), 0);
	CHECK_EQ(bio_scan_n_labels(s), 2);
	CHECK_STR(bio_scan_label_name(s, 1), "001_R+102");
	CHECK_EQ(bio_scan_split_count(s, BIO_SCAN_TRAIN), 1);
	CHECK_EQ(bio_scan_split_count(s, BIO_SCAN_VAL), 1);
	bio_scan_free(s);
	bio_config_free(c);

	/* errors name the key and where it was set */
	c = config_with("scan:\n  iris:\n    pattern: '^(['\n");
	CHECK(bio_scan_from_config(&s, c, NULL, &err) < 0);
	CHECK(s == NULL);
	CHECK(strstr(err.msg, "over.yaml:3: scan.iris.pattern: invalid regular expression") ==
	      err.msg);
	bio_config_free(c);
	c = config_with("scan:\n  fingerprint:\n    identity: [eye]\n");
	CHECK(bio_scan_from_config(&s, c, NULL, &err) < 0);
	CHECK(strstr(err.msg, "over.yaml:3: scan.fingerprint.identity: field 'eye'") == err.msg);
	bio_config_free(c);
	c = config_with("scan:\n  split:\n    val: 0.6\n    test: 0.5\n");
	CHECK(bio_scan_from_config(&s, c, NULL, &err) < 0);
	CHECK(strstr(err.msg, "scan.split.test: val 0.6 + test 0.5 exceeds 1") != NULL);
	bio_config_free(c);
	c = config_with("scan:\n  modalities: [fingerprint]\n  chimeric: true\n");
	CHECK(bio_scan_from_config(&s, c, NULL, &err) < 0);
	CHECK(strstr(err.msg, "over.yaml:3: scan.chimeric: ") == err.msg);
	bio_config_free(c);
}

int main(void)
{
	RUN(natural_order);
	RUN(spec_errors);
	RUN(pair_by_key);
	RUN(labels_natural_and_single_modality);
	RUN(duplicates);
	RUN(stratified_split);
	RUN(disjoint_split);
	RUN(chimeric);
	RUN(walk);
	RUN(from_config);
	return test_summary();
}
