/* Unit tests of the MLflow file-store writer: the directory tree, experiment and run meta.yaml
 * contents, params/metrics/tags file formats, key sanitising, artifacts, run end and reopen,
 * the model registry, and YAML quoting checked against PyYAML (tests/python/check_mlruns.py
 * --exact re-dumps every meta.yaml with PyYAML and compares bytes); aliases and directory
 * sources; a tracking-server run whose server does not answer (journaled, flush fails fast). */
#include "bio/track.h"
#include "bio/http.h"

#include <dirent.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

static char *slurp(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Contents of the file named by the printf-style path (NULL when missing). */
static char *slurp(const char *fmt, ...)
{
	char path[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(path, sizeof path, fmt, ap);
	va_end(ap);
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = calloc(1, 1 << 20);
	size_t n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}
/* The file rel of run r's directory holds exactly want. */
static void check_run_file(const struct bio_track_run *r, const char *rel, const char *want)
{
	char *got = slurp("%s/%s", bio_track_run_dir(r), rel);
	CHECK_STR(got, want);
	free(got);
}


static int matches(const char *text, const char *pattern)
{
	regex_t re;
	BIO_ASSERT(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) == 0);
	int m = text && regexec(&re, text, 0, NULL, 0) == 0;
	regfree(&re);
	if (!m)
		fprintf(stderr, "no match for /%s/ in:\n%s\n", pattern, text ? text : "(null)");
	return m;
}

static char tmpdir[64];

static void rm_rf(const char *path)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
	BIO_ASSERT(system(cmd) == 0);
}

/* Runs check_mlruns.py on root with extra arguments; returns its exit status (-1: no python).
 * Its messages are shown unless the arguments end with a '!' (a check expected to fail). */
static int check_mlruns(const char *root, const char *args)
{
	size_t alen = strlen(args);
	int expect_fail = alen && args[alen - 1] == '!';
	if (access("/usr/bin/python3", X_OK) != 0 || access("tests/python/check_mlruns.py", R_OK) != 0)
		return -1;
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/python/check_mlruns.py --quiet %.*s '%s'%s",
		 (int)(alen - (size_t)expect_fail), args, root, expect_fail ? " 2>/dev/null" : "");
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 99;
}

TEST(sanitize_key)
{
	const char *cases[][2] = {
		{"training.lr", "training.lr"},   {"a(b)=c,d@e", "a_b__c_d_e"},
		{"train/loss", "train/loss"},     {"/x//y/", "x/y"},
		{"../etc/passwd", "_/etc/passwd"}, {"a/./b", "a/_/b"},
		{"", "_"},                         {"x y-z_1", "x y-z_1"},
		{"caf\xc3\xa9", "caf__"},          {"a:b", "a_b"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char out[BIO_TRACK_MAX_KEY + 1];
		CHECK_EQ(bio_track_sanitize_key(out, sizeof out, cases[i][0]), 0);
		CHECK_STR(out, cases[i][1]);
	}
	char longkey[400], out[BIO_TRACK_MAX_KEY + 1];
	memset(longkey, 'k', sizeof longkey - 1);
	longkey[sizeof longkey - 1] = '\0';
	CHECK_EQ(bio_track_sanitize_key(out, sizeof out, longkey), 0);
	CHECK_EQ(strlen(out), BIO_TRACK_MAX_KEY);
}

TEST(run_tree_and_files)
{
	char root[128];
	snprintf(root, sizeof root, "%s/mlruns", tmpdir);
	struct bio_error err = {0};
	struct bio_track_run *r = bio_track_run_start(root, "bio exp", "first", &err);
	CHECK(r != NULL);
	if (!r) {
		fprintf(stderr, "%s\n", err.msg);
		return;
	}
	struct stat st;
	CHECK(stat(root, &st) == 0 && S_ISDIR(st.st_mode));
	char *p = slurp("%s/.trash", root);
	CHECK(stat(root, &st) == 0);
	free(p);
	/* experiment 0 */
	char *m0 = slurp("%s/0/meta.yaml", root);
	CHECK(matches(m0, "^artifact_location: file:///[^\n]*/mlruns/0\n"
			  "creation_time: 1[0-9]{12}\n"
			  "experiment_id: '0'\n"
			  "last_update_time: 1[0-9]{12}\n"
			  "lifecycle_stage: active\n"
			  "name: Default\n$"));
	free(m0);
	/* the named experiment: dir = id */
	const char *eid = bio_track_run_experiment_id(r);
	CHECK(matches(eid, "^[1-9][0-9]{17,18}$"));
	char *me = slurp("%s/%s/meta.yaml", root, eid);
	CHECK(matches(me, "experiment_id: '[0-9]+'\n"));
	CHECK(matches(me, "\nname: bio exp\n$"));
	free(me);
	/* the run */
	const char *rid = bio_track_run_id(r);
	CHECK(matches(rid, "^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$"));
	char *mr = slurp("%s/%s/%s/meta.yaml", root, eid, rid);
	CHECK(matches(mr, "^artifact_uri: file:///[^\n]*/mlruns/[0-9]+/[0-9a-f]{32}/artifacts\n"
			  "deleted_time: null\n"
			  "end_time: null\n"
			  "entry_point_name: ''\n"
			  "experiment_id: '[0-9]+'\n"
			  "lifecycle_stage: active\n"
			  "run_id: [0-9a-f']{32,34}\n"
			  "run_name: first\n"
			  "run_uuid: [0-9a-f']{32,34}\n"
			  "source_name: ''\n"
			  "source_type: 4\n"
			  "source_version: ''\n"
			  "start_time: 1[0-9]{12}\n"
			  "status: 1\n"
			  "tags: \\[\\]\n"
			  "user_id: [^\n]+\n$"));
	free(mr);
	check_run_file(r, "tags/mlflow.runName", "first");
	check_run_file(r, "tags/mlflow.source.type", "LOCAL");

	/* params: raw value, immutable, limits, sanitised keys with subdirectories */
	CHECK_EQ(bio_track_log_param(r, "training.lr", "0.001", &err), 0);
	CHECK_EQ(bio_track_log_param(r, "training.lr", "0.001", &err), 0);
	CHECK_EQ(bio_track_log_param(r, "training.lr", "0.01", &err), BIO_EINVAL);
	CHECK(strstr(err.msg, "already logged with value '0.001'") != NULL);
	CHECK_EQ(bio_track_log_param(r, "model/fusion(kind)", "concat", &err), 0);
	char big[BIO_TRACK_MAX_PARAM_VALUE + 2];
	memset(big, 'v', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	CHECK_EQ(bio_track_log_param(r, "big", big, &err), BIO_ELIMIT);
	big[BIO_TRACK_MAX_PARAM_VALUE] = '\0';
	CHECK_EQ(bio_track_log_param(r, "big", big, &err), 0);
	check_run_file(r, "params/training.lr", "0.001");
	check_run_file(r, "params/model/fusion_kind_", "concat");
	CHECK_EQ(bio_track_log_param(r, "empty", "", &err), 0);
	check_run_file(r, "params/empty", "");

	/* metrics: "<ts> <value> <step>\n", values as Python's repr */
	struct {
		double v;
		const char *s;
	} vals[] = {
		{0.5, "0.5"},
		{1.0, "1.0"},
		{0.1, "0.1"},
		{1.0 / 3, "0.3333333333333333"},
		{1e-05, "1e-05"},
		{0.0001, "0.0001"},
		{1e16, "1e+16"},
		{1e15, "1000000000000000.0"},
		{123.456, "123.456"},
		{-0.0, "-0.0"},
		{12345678901234567890.0, "1.2345678901234567e+19"},
		{2.5e-300, "2.5e-300"},
		{NAN, "nan"},
		{INFINITY, "inf"},
		{-INFINITY, "-inf"},
		{75.25, "75.25"},
	};
	char expect[4096] = "";
	for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
		CHECK_EQ(bio_track_log_metric(r, "train/loss", vals[i].v, (int64_t)i,
					      1700000000000 + (int64_t)i, &err), 0);
		char line[128];
		snprintf(line, sizeof line, "%lld %s %zu\n", 1700000000000LL + (long long)i, vals[i].s, i);
		strcat(expect, line);
	}
	check_run_file(r, "metrics/train/loss", expect);
	CHECK_EQ(bio_track_log_metric(r, "lr", 0.001, 3, 0, &err), 0);
	char *mf = slurp("%s/metrics/lr", bio_track_run_dir(r));
	CHECK(matches(mf, "^1[0-9]{12} 0\\.001 3\n$"));
	free(mf);
	CHECK_EQ(bio_track_log_metric(r, "lr", 0.001, 3, -5, &err), BIO_EINVAL);

	/* tags: overwrite; mlflow.runName renames the run */
	CHECK_EQ(bio_track_set_tag(r, "mlflow.source.git.commit", "abc123", &err), 0);
	CHECK_EQ(bio_track_set_tag(r, "note", "line1\nline2", &err), 0);
	CHECK_EQ(bio_track_set_tag(r, "mlflow.runName", "renamed", &err), 0);
	mr = slurp("%s/meta.yaml", bio_track_run_dir(r));
	CHECK(matches(mr, "\nrun_name: renamed\n"));
	free(mr);
	check_run_file(r, "tags/note", "line1\nline2");

	/* artifacts */
	char src[160];
	snprintf(src, sizeof src, "%s/best.bin", tmpdir);
	FILE *f = fopen(src, "wb");
	for (int i = 0; i < 100000; i++)
		fputc(i * 7, f);
	fclose(f);
	CHECK_EQ(bio_track_log_artifact(r, src, "checkpoints", &err), 0);
	CHECK_EQ(bio_track_log_artifact(r, src, NULL, &err), 0);
	CHECK_EQ(bio_track_log_artifact(r, src, "../escape", &err), BIO_EINVAL);
	CHECK_EQ(bio_track_log_artifact(r, src, "/abs", &err), BIO_EINVAL);
	CHECK_EQ(bio_track_log_artifact(r, "/nonexistent/file", NULL, &err), BIO_ENOTFOUND);
	char cmp[512];
	snprintf(cmp, sizeof cmp, "cmp -s '%s' '%s/checkpoints/best.bin' && cmp -s '%s' '%s/best.bin'",
		 src, bio_track_run_artifact_dir(r), src, bio_track_run_artifact_dir(r));
	CHECK_EQ(system(cmp), 0);

	/* end */
	CHECK_EQ(bio_track_run_end(r, 7, &err), BIO_EINVAL);
	CHECK_EQ(bio_track_run_end(r, BIO_TRACK_FINISHED, &err), 0);
	mr = slurp("%s/meta.yaml", bio_track_run_dir(r));
	CHECK(matches(mr, "\nend_time: 1[0-9]{12}\n"));
	CHECK(matches(mr, "\nstatus: 3\n"));
	CHECK(strstr(mr, "deleted_time") == NULL); /* as MLflow's _overwrite_run_info */
	free(mr);
	CHECK_EQ(check_mlruns(root, "--exact --runs 1 --status FINISHED --experiment 'bio exp'") > 0,
		 0);

	/* a second run of the same experiment; then the default experiment */
	char *rid1 = strdup(rid), *eid1 = strdup(eid);
	bio_track_run_free(r);
	r = bio_track_run_start(root, "bio exp", NULL, &err);
	CHECK_STR(bio_track_run_experiment_id(r), eid1);
	char want_name[16];
	snprintf(want_name, sizeof want_name, "run-%.8s", bio_track_run_id(r));
	check_run_file(r, "tags/mlflow.runName", want_name);
	bio_track_run_end(r, BIO_TRACK_KILLED, &err);
	bio_track_run_free(r);
	r = bio_track_run_start(root, NULL, "in default", &err);
	CHECK_STR(bio_track_run_experiment_id(r), "0");
	bio_track_run_free(r); /* left RUNNING */

	/* reopen the first run (resume): RUNNING again, more points, then FAILED */
	r = bio_track_run_open(root, rid1, &err);
	CHECK(r != NULL);
	if (r) {
		mr = slurp("%s/meta.yaml", bio_track_run_dir(r));
		CHECK(matches(mr, "\nend_time: null\n"));
		CHECK(matches(mr, "\nstatus: 1\n"));
		CHECK(matches(mr, "\nrun_name: renamed\n"));
		free(mr);
		CHECK_EQ(bio_track_log_metric(r, "train/loss", 0.25, 16, 0, &err), 0);
		CHECK_EQ(bio_track_run_end(r, BIO_TRACK_FAILED, &err), 0);
		bio_track_run_free(r);
	}
	CHECK(bio_track_run_open(root, "0123456789abcdef0123456789abcdef", &err) == NULL);
	CHECK_EQ(err.code, BIO_ENOTFOUND);
	CHECK(bio_track_run_open(root, "../x", &err) == NULL);
	CHECK_EQ(check_mlruns(root, "--exact --runs 3") > 0, 0);

	/* the validator can fail: a malformed metric line and a wrong status */
	char path[512];
	snprintf(path, sizeof path, "%s/%s/%s/metrics/bad", root, eid1, rid1);
	f = fopen(path, "w");
	fputs("0.5 1700000000000 1\n", f); /* value first: the wrong order */
	fclose(f);
	CHECK_EQ(check_mlruns(root, "!") == 0, 0);
	remove(path);
	CHECK_EQ(check_mlruns(root, "--status FINISHED !") == 0, 0);
	free(rid1);
	free(eid1);
}

TEST(yaml_quoting_matches_pyyaml)
{
	char root[128];
	snprintf(root, sizeof root, "%s/quoting", tmpdir);
	const char *names[] = {
		"123",   "yes",      "No",        "null",     "~",         "a: b",     "#hash",
		"x #y",  "it's",     "tab\there", "two\nlines", " lead",   "trail ",   "1.5",
		"1e3",   "0x1F",     "2024-01-01", "-dash",   "- item",    "[list]",   "{map}",
		"a,b",   "@at",      "%pct",      "`tick",    "*star",     "!bang",    "|pipe",
		">gt",   "\"dq\"",   "1_000",     ".inf",     "3:25:45",   "caf\xc3\xa9", "=",
		"<<",    "on",       "0o17",      "07",       "+1",        "-.5",      "plain name",
		"ends:", "?q",       "? q",       "a:b",      "x\\y",       "a\n",     "\na",
		"a\n\nb", "a \nb",    "a\n b",     "bell\a",   "q\"x",     "e\x1bx",  "it's\nx",
		"---x",  "...", "emoji \xf0\x9f\x98\x80", "nbsp\xc2\xa0x", "bom\xef\xbb\xbf", "c1\xc2\x80",
		"a long run name with many words that goes well past the eighty column limit of PyYAML",
		"'a long single-quoted name with words that goes well past the eighty column limit'",
		"a long\tdouble-quoted name with words that goes well past the eighty column limit of it",
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		struct bio_error err = {0};
		struct bio_track_run *r = bio_track_run_start(root, names[i], names[i], &err);
		CHECK(r != NULL);
		if (!r) {
			fprintf(stderr, "%s: %s\n", names[i], err.msg);
			continue;
		}
		CHECK_EQ(bio_track_run_end(r, BIO_TRACK_FINISHED, &err), 0);
		bio_track_run_free(r);
		/* found again by name (read back with libyaml) */
		r = bio_track_run_start(root, names[i], "again", &err);
		CHECK(r != NULL);
		bio_track_run_free(r);
	}
	int rc = check_mlruns(root, "--exact");
	if (rc < 0)
		fprintf(stderr, "note: /usr/bin/python3 missing, PyYAML comparison skipped\n");
	CHECK(rc <= 0);
	struct bio_error e2 = {0};
	CHECK(bio_track_run_start(root, "bad \xc3(", NULL, &e2) == NULL);
	CHECK_EQ(e2.code, BIO_EINVAL);
	/* an experiment name in the trash is refused */
	char trash_cmd[512];
	snprintf(trash_cmd, sizeof trash_cmd, "cd '%s' && for d in */; do "
		 "grep -qx 'name: plain name' \"$d/meta.yaml\" 2>/dev/null && "
		 "sed -i 's/lifecycle_stage: active/lifecycle_stage: deleted/' \"$d/meta.yaml\" && "
		 "mv \"$d\" .trash/; done; true", root);
	CHECK_EQ(system(trash_cmd), 0);
	struct bio_error err = {0};
	CHECK(bio_track_run_start(root, "plain name", NULL, &err) == NULL);
	CHECK(strstr(err.msg, "deleted state") != NULL);
}

/* The model URI uri resolves in the store root to the path want. */
static void check_resolves(const char *root, const char *uri, const char *want)
{
	char *path = NULL;
	struct bio_error err = {0};
	CHECK_EQ(bio_track_resolve_model(&path, root, uri, &err), 0);
	CHECK_STR(path, want);
	free(path);
}

/* A run "r" of experiment "train" in the store tmpdir/STORE (its path in root) that logged a
 * file tmpdir/FILE (its path in src) holding "checkpoint" under "checkpoints". */
static struct bio_track_run *run_with_checkpoint(char *root, size_t root_size, char *src,
						 size_t src_size, const char *store,
						 const char *file, struct bio_error *err)
{
	snprintf(root, root_size, "%s/%s", tmpdir, store);
	struct bio_track_run *r = bio_track_run_start(root, "train", "r", err);
	BIO_ASSERT(r);
	snprintf(src, src_size, "%s/%s", tmpdir, file);
	FILE *f = fopen(src, "wb");
	BIO_ASSERT(f);
	fputs("checkpoint", f);
	fclose(f);
	CHECK_EQ(bio_track_log_artifact(r, src, "checkpoints", err), 0);
	return r;
}

TEST(model_registry)
{
	char root[128], src[160];
	struct bio_error err = {0};
	struct bio_track_run *r =
		run_with_checkpoint(root, sizeof root, src, sizeof src, "reg", "best.bin", &err);
	char source[256];
	snprintf(source, sizeof source, "runs:/%s/checkpoints/best.bin", bio_track_run_id(r));
	int64_t v = 0;
	CHECK_EQ(bio_track_register_model(&v, root, "biometric", source, bio_track_run_id(r), &err),
		 0);
	CHECK_EQ(v, 1);
	char *m = slurp("%s/models/biometric/meta.yaml", root);
	CHECK(matches(m, "^aliases: \\[\\]\n"
			 "creation_timestamp: 1[0-9]{12}\n"
			 "description: null\n"
			 "last_updated_timestamp: 1[0-9]{12}\n"
			 "name: biometric\n$"));
	free(m);
	m = slurp("%s/models/biometric/version-1/meta.yaml", root);
	CHECK(matches(m, "^aliases: \\[\\]\n"
			 "creation_timestamp: 1[0-9]{12}\n"
			 "current_stage: None\n"
			 "description: null\n"
			 "last_updated_timestamp: 1[0-9]{12}\n"
			 "name: biometric\n"
			 "run_id: [0-9a-f']+\n"
			 "run_link: null\n"
			 "source: runs:/[0-9a-f]{32}/checkpoints/best.bin\n"
			 "status: READY\n"
			 "status_message: null\n"
			 "storage_location: runs:/[0-9a-f]{32}/checkpoints/best.bin\n"
			 "user_id: null\n"
			 "version: 1\n$"));
	free(m);
	char file_src[256];
	snprintf(file_src, sizeof file_src, "file://%s", src);
	CHECK_EQ(bio_track_register_model(&v, root, "biometric", file_src, NULL, &err), 0);
	CHECK_EQ(v, 2);
	CHECK_EQ(bio_track_register_model(&v, root, "bad/name", file_src, NULL, &err), BIO_EINVAL);
	CHECK_EQ(bio_track_register_model(&v, root, "bad%name", file_src, NULL, &err), BIO_EINVAL);

	char *path = NULL, want[512];
	snprintf(want, sizeof want, "%s/checkpoints/best.bin", bio_track_run_artifact_dir(r));
	check_resolves(root, "models:/biometric/1", want);
	check_resolves(root, "models:/biometric/latest", src);
	check_resolves(root, source, want);
	CHECK_EQ(bio_track_resolve_model(&path, root, "models:/biometric/3", &err), BIO_ENOTFOUND);
	CHECK_EQ(bio_track_resolve_model(&path, root, "models:/nomodel/latest", &err), BIO_ENOTFOUND);
	CHECK_EQ(bio_track_resolve_model(&path, root, "models:/biometric/x", &err), BIO_EINVAL);
	CHECK_EQ(bio_track_resolve_model(&path, root, "s3://bucket/x", &err), BIO_EUNSUPPORTED);
	check_resolves(root, "/plain/path.bin", "/plain/path.bin");
	/* a deleted latest version is passed over */
	char sed[512];
	snprintf(sed, sizeof sed, "sed -i 's/current_stage: None/current_stage: Deleted_Internal/' "
		 "'%s/models/biometric/version-2/meta.yaml'", root);
	CHECK_EQ(system(sed), 0);
	check_resolves(root, "models:/biometric/latest", want);
	CHECK_EQ(bio_track_resolve_model(&path, root, "models:/biometric/2", &err), BIO_ENOTFOUND);
	bio_track_run_end(r, BIO_TRACK_FINISHED, &err);
	bio_track_run_free(r);
	CHECK_EQ(check_mlruns(root, "--exact") > 0, 0);
}

TEST(aliases_and_directory_sources)
{
	char root[128], src[160];
	struct bio_error err = {0};
	struct bio_track_run *r =
		run_with_checkpoint(root, sizeof root, src, sizeof src, "alias", "best.ckpt", &err);
	int64_t v = 0;
	CHECK_EQ(bio_track_run_register(&v, r, "m", "checkpoints", "champion", &err), 0);
	CHECK_EQ(v, 1);
	char *a = slurp("%s/models/m/aliases/champion", root);
	CHECK_STR(a, "1");
	free(a);
	char *m = slurp("%s/models/m/version-1/meta.yaml", root);
	CHECK(matches(m, "\nsource: runs:/[0-9a-f]{32}/checkpoints\n"));
	free(m);
	char *path = NULL, want[512];
	snprintf(want, sizeof want, "%s/checkpoints/best.ckpt", bio_track_run_artifact_dir(r));
	check_resolves(root, "models:/m@champion", want);
	check_resolves(root, "models:/m/1", want);
	CHECK_EQ(bio_track_resolve_model(&path, root, "models:/m@nosuch", &err), BIO_ENOTFOUND);
	CHECK_EQ(bio_track_resolve_model(&path, root, "models:/m@bad!", &err), BIO_EINVAL);
	CHECK_EQ(bio_track_set_alias(root, "m", "prod", 2, &err), BIO_ENOTFOUND);
	CHECK_EQ(bio_track_set_alias(root, "m", "latest", 1, &err), BIO_EINVAL);
	CHECK_EQ(bio_track_set_alias(root, "m", "v3", 1, &err), BIO_EINVAL);
	CHECK_EQ(bio_track_set_alias(root, "m", "a b", 1, &err), BIO_EINVAL);
	CHECK_EQ(bio_track_set_alias(root, "m", "prod-2_x", 1, &err), 0);
	CHECK_EQ(bio_track_run_register(&v, r, "m", "checkpoints", "latest", &err), BIO_EINVAL);
	bio_track_run_end(r, BIO_TRACK_FINISHED, &err);
	bio_track_run_free(r);
	CHECK_EQ(check_mlruns(root, "--exact") > 0, 0);
}

TEST(server_down_journal)
{
	char spool[128];
	snprintf(spool, sizeof spool, "%s/spool", tmpdir);
	struct bio_track_opts o;
	bio_track_opts_init(&o);
	o.spool_dir = spool;
	o.retries = 1;
	o.backoff_s = 0.01;
	o.connect_timeout_s = 2;
	CHECK(bio_track_uri_is_server("https://x") && !bio_track_uri_is_server("mlruns"));
	struct bio_error err = {0};
	/* port 1 on loopback: nothing listens, the connection is refused at once */
	struct bio_track_run *r = bio_track_run_start_opts("http://127.0.0.1:1", &o, "e", "n", &err);
	BIO_ASSERT(r);
	CHECK(bio_track_run_server_id(r) == NULL);
	CHECK_EQ(bio_track_log_param(r, "a", "1", &err), 0);
	CHECK_EQ(bio_track_log_metric(r, "loss", 0.5, 0, 0, &err), 0);
	CHECK_EQ(bio_track_flush_now(r, &err), BIO_EIO);
	CHECK(strstr(err.msg, "127.0.0.1:1") && strstr(err.msg, spool));
	/* within the wait, a flush answers at once with the same error */
	CHECK_EQ(bio_track_flush(r, &err), BIO_EIO);
	int64_t v = 1;
	CHECK_EQ(bio_track_run_register(&v, r, "m", "checkpoints", NULL, &err), 0);
	CHECK_EQ(v, 0);
	CHECK_EQ(bio_track_run_end(r, BIO_TRACK_FINISHED, &err), 0);
	char *line = slurp("%s/metrics/loss", bio_track_run_dir(r));
	CHECK(matches(line, "^1[0-9]{12} 0.5 0\n$"));
	free(line);
	char *st = slurp("%s/bio-remote.json", bio_track_run_dir(r));
	CHECK(matches(st, "\"uri\": \"http://127.0.0.1:1\""));
	CHECK(matches(st, "\"name\": \"m\""));
	free(st);
	bio_track_run_free(r);
	size_t n_runs = 0, n_pending = 0;
	CHECK_EQ(bio_track_sync(&n_runs, &n_pending, spool, &o, &err), BIO_EIO);
	CHECK_EQ(n_runs, 1);
	CHECK_EQ(n_pending, 1);
	/* the journal is a file store MLflow reads */
	CHECK_EQ(check_mlruns(spool, "--exact") > 0, 0);
	char *e = bio_http_escape("a b/c%", 0);
	CHECK_STR(e, "a%20b%2Fc%25");
	free(e);
	e = bio_http_escape("a b/c", 1);
	CHECK_STR(e, "a%20b/c");
	free(e);
}

/* The readers for reports: a run found by id, its status read without reopening it, its
 * metrics as series sorted by key. */
TEST(read_run_metrics_and_status)
{
	struct bio_error err = {0};
	char root[128];
	snprintf(root, sizeof root, "%s/read", tmpdir);
	struct bio_track_run *r = bio_track_run_start(root, "exp", "reader", &err);
	CHECK(r != NULL);
	if (!r)
		return;
	CHECK_EQ(bio_track_log_metric(r, "val_loss", 0.5, 0, 1000, &err), 0);
	CHECK_EQ(bio_track_log_metric(r, "val_loss", 0.25, 1, 2000, &err), 0);
	CHECK_EQ(bio_track_log_metric(r, "lr", 0.1, 0, 1000, &err), 0);
	char *dir = NULL;
	CHECK_EQ(bio_track_run_find(&dir, root, bio_track_run_id(r), &err), 0);
	CHECK_STR(dir, bio_track_run_dir(r));
	int status = 0;
	CHECK_EQ(bio_track_run_read_status(&status, dir, &err), 0);
	CHECK_EQ(status, BIO_TRACK_RUNNING);
	CHECK_EQ(bio_track_run_end(r, BIO_TRACK_FINISHED, &err), 0);
	CHECK_EQ(bio_track_run_read_status(&status, dir, &err), 0);
	CHECK_EQ(status, BIO_TRACK_FINISHED);
	/* a torn last line (a killed writer) is passed over */
	char *path = NULL;
	CHECK(asprintf(&path, "%s/metrics/lr", dir) > 0);
	FILE *f = path ? fopen(path, "a") : NULL;
	CHECK(f != NULL);
	if (f) {
		fputs("3000 0.0", f);
		fclose(f);
	}
	free(path);
	struct bio_track_series *s = NULL;
	size_t n = 0;
	CHECK_EQ(bio_track_run_read_metrics(&s, &n, dir, &err), 0);
	CHECK_EQ(n, 2);
	if (n == 2) {
		CHECK_STR(s[0].key, "lr");
		CHECK_EQ(s[0].n, 1);
		CHECK_STR(s[1].key, "val_loss");
		CHECK_EQ(s[1].n, 2);
		if (s[1].n == 2) {
			CHECK(s[1].values[0] == 0.5 && s[1].values[1] == 0.25);
			CHECK_EQ(s[1].steps[1], 1);
			CHECK_EQ(s[1].timestamps[1], 2000);
		}
	}
	bio_track_series_free(s, n);
	bio_track_series_free(NULL, 0);
	char none[] = "0123456789abcdef0123456789abcdef";
	char *nodir = NULL;
	CHECK_EQ(bio_track_run_find(&nodir, root, none, &err), BIO_ENOTFOUND);
	CHECK(nodir == NULL);
	CHECK(bio_track_run_find(&nodir, root, "../x", &err) < 0);
	CHECK_EQ(bio_track_run_read_metrics(&s, &n, tmpdir, &err), BIO_ENOTFOUND);
	free(dir);
	bio_track_run_free(r);
}

int main(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/test_track.XXXXXX");
	BIO_ASSERT(mkdtemp(tmpdir));
	RUN(sanitize_key);
	RUN(run_tree_and_files);
	RUN(yaml_quoting_matches_pyyaml);
	RUN(model_registry);
	RUN(aliases_and_directory_sources);
	RUN(server_down_journal);
	RUN(read_run_metrics_and_status);
	int rc = test_summary();
	if (rc == 0)
		rm_rf(tmpdir);
	else
		fprintf(stderr, "store kept in %s\n", tmpdir);
	return rc;
}
