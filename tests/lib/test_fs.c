/* Unit tests of lib/fs.c (mkdir -p, atomic writes), lib/csv.c (field quoting) and lib/clock.c. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bio/clock.h"
#include "bio/csv.h"
#include "bio/fs.h"
#include "test.h"

static char root[] = "/tmp/bio-test-fs-XXXXXX";

static int is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static size_t n_entries(const char *dir)
{
	size_t n = 0;
	DIR *d = opendir(dir);
	for (struct dirent *e; d && (e = readdir(d));)
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	if (d)
		closedir(d);
	return n;
}

TEST(mkdir_p_makes_parents_and_names_the_path)
{
	char p[512], f[256];
	struct bio_error err = {0};
	snprintf(p, sizeof p, "%s/a/b/c", root);
	CHECK_EQ(bio_fs_mkdir_p(p, &err), 0);
	CHECK(is_dir(p));
	CHECK_EQ(bio_fs_mkdir_p(p, &err), 0); /* already there */
	snprintf(f, sizeof f, "%s/file", root);
	FILE *fp = fopen(f, "w");
	CHECK(fp != NULL);
	if (fp)
		fclose(fp);
	CHECK(bio_fs_mkdir_p(f, &err) < 0);
	snprintf(p, sizeof p, "%s: not a directory", f);
	CHECK_STR(err.msg, p);
	snprintf(p, sizeof p, "%s/file/sub", root);
	CHECK(bio_fs_mkdir_p(p, &err) < 0);
	CHECK(strncmp(err.msg, p, strlen(p)) == 0 && strstr(err.msg, "cannot create directory"));
	snprintf(p, sizeof p, "%s/x/y/z.txt", root);
	CHECK_EQ(bio_fs_mkdir_parent(p, &err), 0);
	snprintf(p, sizeof p, "%s/x/y", root);
	CHECK(is_dir(p));
	CHECK_EQ(bio_fs_mkdir_parent("plain", &err), 0);
}

TEST(write_atomic_replaces_and_leaves_no_temp)
{
	char p[512], d[256], buf[64] = {0};
	struct bio_error err = {0};
	snprintf(d, sizeof d, "%s/w/new", root);
	snprintf(p, sizeof p, "%s/out.txt", d);
	for (int sync = 0; sync < 2; sync++) {
		CHECK_EQ(bio_fs_write_atomic(p, "first\n", 6, NULL, sync, &err), 0);
		CHECK_EQ(bio_fs_write_atomic(p, "second\n", 7, NULL, sync, &err), 0);
		FILE *f = fopen(p, "r");
		CHECK(f != NULL);
		if (f) {
			CHECK_EQ(fread(buf, 1, sizeof buf - 1, f), 7);
			fclose(f);
		}
		CHECK_STR(buf, "second\n");
		CHECK_EQ(n_entries(d), 1);
	}
	/* the temp file elsewhere on the same file system */
	char q[256];
	snprintf(q, sizeof q, "%s/w/other.txt", root);
	CHECK_EQ(bio_fs_write_atomic(q, "", 0, d, 0, &err), 0);
	CHECK_EQ(n_entries(d), 1);
	struct stat st;
	CHECK(stat(q, &st) == 0 && st.st_size == 0 && (st.st_mode & 0777) == 0644);
	snprintf(q, sizeof q, "%s/file/x", root); /* a parent that is a file */
	CHECK(bio_fs_write_atomic(q, "x", 1, NULL, 0, &err) < 0);
}

TEST(csv_fields_and_clock)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	CHECK(f != NULL);
	if (!f)
		return;
	bio_csv_put_field(f, "plain");
	fputc('|', f);
	bio_csv_put_field(f, "a,b");
	fputc('|', f);
	bio_csv_put_field(f, "say \"hi\"");
	fputc('|', f);
	bio_csv_put_field(f, "two\nlines");
	fputc('|', f);
	bio_csv_put_float(f, 0.1f);
	fputc('|', f);
	bio_csv_put_float(f, 3.0f);
	fclose(f);
	CHECK_STR(text, "plain|\"a,b\"|\"say \"\"hi\"\"\"|\"two\nlines\"|0.100000001|3");
	free(text);
	double t0 = bio_clock_now_s();
	CHECK(bio_clock_now_s() >= t0);
	CHECK(bio_clock_now_ms() > INT64_C(1600000000000)); /* after 2020 */
}

TEST_MAIN_IN_TMPDIR(root, TEST_CASE(mkdir_p_makes_parents_and_names_the_path),
		    TEST_CASE(write_atomic_replaces_and_leaves_no_temp),
		    TEST_CASE(csv_fields_and_clock))
