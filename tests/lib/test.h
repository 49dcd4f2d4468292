/* A tiny in-house unit test runner: TEST(name) functions registered in main via RUN(name),
 * CHECK/CHECK_EQ/CHECK_NEAR assertions that record a failure and go on, and a closing line
 * "N passed, N failed" that CI reads. */
#ifndef BIO_TEST_H
#define BIO_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failed_checks;
static int test_n_passed, test_n_failed;

#define CHECK(cond)                                                                        \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			test_failed_checks++;                                              \
		}                                                                          \
	} while (0)

#define CHECK_EQ(a, b)                                                                     \
	do {                                                                               \
		long long va_ = (long long)(a), vb_ = (long long)(b);                      \
		if (va_ != vb_) {                                                          \
			fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %lld, %s == %lld\n", \
				__FILE__, __LINE__, #a, va_, #b, vb_);                     \
			test_failed_checks++;                                              \
		}                                                                          \
	} while (0)

#define CHECK_STR(a, b)                                                                    \
	do {                                                                               \
		const char *sa_ = (a), *sb_ = (b);                                         \
		if (!sa_ || !sb_ || strcmp(sa_, sb_) != 0) {                               \
			fprintf(stderr, "%s:%d: CHECK_STR failed: '%s' vs '%s'\n", __FILE__, \
				__LINE__, sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)");     \
			test_failed_checks++;                                              \
		}                                                                          \
	} while (0)

#define CHECK_NEAR(a, b, tol)                                                              \
	do {                                                                               \
		double da_ = (double)(a), db_ = (double)(b);                               \
		if (!(fabs(da_ - db_) <= (tol))) {                                         \
			fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s = %.9g, %s = %.9g (tol %g)\n", \
				__FILE__, __LINE__, #a, da_, #b, db_, (double)(tol));      \
			test_failed_checks++;                                              \
		}                                                                          \
	} while (0)

#define TEST(name) static void test_##name(void)

/* Runs one test and counts it passed or failed (FAIL and its name on stderr). */
static inline void test_run(const char *name, void (*fn)(void))
{
	int before = test_failed_checks;
	fn();
	if (test_failed_checks == before) {
		test_n_passed++;
	} else {
		test_n_failed++;
		fprintf(stderr, "FAIL %s\n", name);
	}
}

#define RUN(name) test_run(#name, test_##name)

/* One entry of a table of tests: TEST_CASE(name) for a TEST(name). */
struct test_case {
	const char *name;
	void (*fn)(void);
};
#define TEST_CASE(name) {#name, test_##name}

/* A new scratch directory from a template "/tmp/NAME.XXXXXX" (modified in place); 0, or -1
 * with the cause printed. */
static inline int test_tmpdir_make(char *templ)
{
	if (mkdtemp(templ))
		return 0;
	perror(templ);
	return -1;
}

/* Removes a scratch directory and everything below it (a note on stderr when it cannot). */
static inline void test_tmpdir_remove(const char *dir)
{
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

/* Prints the closing line and returns the exit status for main. */
static inline int test_summary(void)
{
	printf("%d passed, %d failed\n", test_n_passed, test_n_failed);
	return test_n_failed ? 1 : 0;
}

/* main for tests sharing one scratch directory: makes dir from its template (modified in
 * place), runs the n tests of t in order, removes dir; the exit status for main. */
static inline int test_main_in_tmpdir(char *dir, const struct test_case *t, size_t n)
{
	if (test_tmpdir_make(dir))
		return 1;
	for (size_t i = 0; i < n; i++)
		test_run(t[i].name, t[i].fn);
	test_tmpdir_remove(dir);
	return test_summary();
}

/* The whole main of a file whose tests share one scratch directory: test_main_in_tmpdir over
 * dir and the TEST_CASE(name)s given after it, in order. */
#define TEST_MAIN_IN_TMPDIR(dir, ...)                                                           \
	int main(void)                                                                          \
	{                                                                                       \
		static const struct test_case tests_[] = {__VA_ARGS__};                         \
		return test_main_in_tmpdir(dir, tests_, sizeof tests_ / sizeof tests_[0]);      \
	}

#endif
