/* PNG plots through gnuplot: the data of each series goes to a file in a private temp directory,
 * a script sets up the panels (axes, probit tick labels, legend) and gnuplot renders the PNG to a
 * temp path that is renamed into place. gnuplot's stdout and stderr go to a log file whose first
 * error line becomes the error message; the library itself prints nothing. */
#include "bio/plot.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bio/metrics.h"

extern char **environ;

static const char *gnuplot_prog(void)
{
	const char *p = getenv("BIO_GNUPLOT");
	return p && *p ? p : "gnuplot";
}

/* Runs gnuplot on script with output to log; returns its exit status, -1 when it cannot start
 * (errno set), or 128 + signal. */
static int run_gnuplot(const char *script, const char *log)
{
	posix_spawn_file_actions_t fa;
	if (posix_spawn_file_actions_init(&fa) != 0)
		return -1;
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	char *argv[] = {(char *)gnuplot_prog(), (char *)script, NULL};
	pid_t pid;
	int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		errno = rc;
		return -1;
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

int bio_plot_available(void)
{
	char dir[] = "/tmp/bio-plot-XXXXXX";
	if (!mkdtemp(dir))
		return 0;
	char script[64], log[64];
	snprintf(script, sizeof script, "%s/a.gp", dir);
	snprintf(log, sizeof log, "%s/log", dir);
	FILE *f = fopen(script, "w");
	int ok = 0;
	if (f) {
		fputs("exit\n", f);
		fclose(f);
		ok = run_gnuplot(script, log) == 0;
	}
	unlink(script);
	unlink(log);
	rmdir(dir);
	return ok;
}

/* Writes s as a gnuplot double-quoted string. */
static void put_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		fputc(*s == '\n' ? ' ' : *s, f);
	}
	fputc('"', f);
}

static double axis_value(enum bio_plot_scale sc, double v)
{
	return sc == BIO_SCALE_PROBIT ? bio_ppndf(v) : v;
}

static const double probit_ticks[] = {1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 2e-3, 5e-3, 0.01, 0.02,
				      0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 0.9, 0.95, 0.98,
				      0.99, 0.995, 0.999};

static void put_percent(FILE *f, double p)
{
	char buf[32];
	snprintf(buf, sizeof buf, "%.6g%%%%", p * 100.0); /* gnuplot tic labels are formats */
	put_str(f, buf);
}

static void put_axis(FILE *f, char ax, enum bio_plot_scale sc, int has_range, double lo, double hi)
{
	if (sc == BIO_SCALE_LOG)
		fprintf(f, "set logscale %c\n", ax);
	else
		fprintf(f, "unset logscale %c\n", ax);
	if (sc == BIO_SCALE_PROBIT) {
		if (!has_range) {
			lo = 1e-4;
			hi = 0.5;
		}
		fprintf(f, "set %ctics (", ax);
		int first = 1;
		for (size_t i = 0; i < sizeof probit_ticks / sizeof probit_ticks[0]; i++) {
			double p = probit_ticks[i];
			if (p < lo * (1 - 1e-9) || p > hi * (1 + 1e-9))
				continue;
			if (!first)
				fputs(", ", f);
			first = 0;
			put_percent(f, p);
			fprintf(f, " %.17g", bio_ppndf(p));
		}
		fputs(")\n", f);
		fprintf(f, "set %crange [%.17g:%.17g]\n", ax, bio_ppndf(lo), bio_ppndf(hi));
		return;
	}
	fprintf(f, "set %ctics autofreq\n", ax);
	if (has_range)
		fprintf(f, "set %crange [%.17g:%.17g]\n", ax, lo, hi);
	else
		fprintf(f, "set %crange [*:*]\n", ax);
}

static int write_script(FILE *f, const char *dir, const char *terminal, const char *out_png,
			const struct bio_plot_panel *panels, size_t n_panels, size_t n_cols,
			int width, int height)
{
	fprintf(f, "set terminal %s size %d,%d noenhanced\n", terminal, width, height);
	fputs("set output ", f);
	put_str(f, out_png);
	fputs("\nset encoding utf8\nset grid lc rgb '#c8c8c8'\nset key box opaque\n", f);
	fputs("set style fill transparent solid 0.35 noborder\n", f);
	if (n_panels > 1) {
		size_t rows = (n_panels + n_cols - 1) / n_cols;
		fprintf(f, "set multiplot layout %zu,%zu\n", rows, n_cols);
	}
	size_t file_no = 0;
	for (size_t p = 0; p < n_panels; p++) {
		const struct bio_plot_panel *pl = &panels[p];
		fputs("unset arrow\nset title ", f);
		put_str(f, pl->title ? pl->title : "");
		fputs("\nset xlabel ", f);
		put_str(f, pl->xlabel ? pl->xlabel : "");
		fputs("\nset ylabel ", f);
		put_str(f, pl->ylabel ? pl->ylabel : "");
		fputc('\n', f);
		put_axis(f, 'x', pl->xscale, pl->has_xrange, pl->xmin, pl->xmax);
		if (pl->integer_x && pl->xscale == BIO_SCALE_LINEAR) {
			/* ticks at whole numbers, about 10 of them at most */
			double hi = 1;
			for (size_t k = 0; k < pl->n_series; k++)
				for (size_t i = 0; i < pl->series[k].n; i++)
					if (pl->series[k].x[i] > hi)
						hi = pl->series[k].x[i];
			double step = hi <= 10 ? 1 : ceil(hi / 10);
			fprintf(f, "set xtics %.17g\nset format x '%%.0f'\n", step);
		} else {
			fputs("set format x \"% h\"\n", f);
		}
		put_axis(f, 'y', pl->yscale, pl->has_yrange, pl->ymin, pl->ymax);
		fprintf(f, "set key %s\n",
			pl->key_pos ? pl->key_pos
				    : pl->yscale == BIO_SCALE_PROBIT || pl->diagonal ? "top right"
										     : "bottom right");
		if (pl->has_vline)
			fprintf(f, "set arrow from first %.17g, graph 0 to first %.17g, graph 1 nohead "
				   "dt 2 lc rgb '#555555'\n",
				pl->vline, pl->vline);
		fputs("plot ", f);
		int any = 0;
		for (size_t s = 0; s < pl->n_series; s++) {
			const struct bio_plot_series *se = &pl->series[s];
			char path[4200];
			snprintf(path, sizeof path, "%s/d%zu.dat", dir, file_no++);
			FILE *d = fopen(path, "w");
			if (!d)
				return -1;
			size_t written = 0;
			for (size_t i = 0; i < se->n; i++) {
				double x = se->x[i], y = se->y[i];
				if (!isfinite(x) || !isfinite(y))
					continue;
				if ((pl->xscale == BIO_SCALE_LOG && x <= 0) ||
				    (pl->yscale == BIO_SCALE_LOG && y <= 0))
					continue;
				fprintf(d, "%.17g %.17g\n", axis_value(pl->xscale, x),
					axis_value(pl->yscale, y));
				written++;
			}
			if (fclose(d) != 0)
				return -1;
			if (!written)
				continue;
			static const char *styles[] = {
				[BIO_STYLE_LINES] = "lines lw 2",
				[BIO_STYLE_STEPS] = "fsteps lw 2",
				[BIO_STYLE_LINESPOINTS] = "linespoints lw 2 pt 7 ps 0.6",
				[BIO_STYLE_BOXES] = "boxes",
			};
			fputs(any ? ", " : "", f);
			put_str(f, path);
			fprintf(f, " using 1:2 with %s", styles[se->style]);
			if (se->title) {
				fputs(" title ", f);
				put_str(f, se->title);
			} else {
				fputs(" notitle", f);
			}
			any = 1;
		}
		if (pl->diagonal) {
			fputs(any ? ", " : "", f);
			fputs("x with lines dt 3 lc rgb '#888888' title \"FMR = FNMR\"", f);
			any = 1;
		}
		if (pl->has_vline && pl->vline_title) {
			fputs(any ? ", " : "", f);
			fputs("NaN with lines dt 2 lc rgb '#555555' title ", f);
			put_str(f, pl->vline_title);
			any = 1;
		}
		if (!any)
			fputs("NaN notitle", f);
		fputc('\n', f);
	}
	if (n_panels > 1)
		fputs("unset multiplot\n", f);
	fputs("set output\n", f);
	return ferror(f) ? -1 : 0;
}

/* First non-empty line of the log file (for messages). */
static void log_first_line(char *buf, size_t size, const char *log)
{
	buf[0] = '\0';
	FILE *f = fopen(log, "r");
	if (!f)
		return;
	char line[512];
	while (fgets(line, sizeof line, f)) {
		char *s = line;
		while (*s == ' ' || *s == '\t' || *s == '^')
			s++;
		s[strcspn(s, "\r\n")] = '\0';
		if (*s && strstr(s, "line ") == s)
			continue; /* skip gnuplot's "line N:" location */
		if (*s) {
			size_t n = strlen(s);
			if (n >= size)
				n = size - 1;
			memcpy(buf, s, n);
			buf[n] = '\0';
			break;
		}
	}
	fclose(f);
}

static void remove_dir(const char *dir, size_t n_files)
{
	char path[4200];
	for (size_t i = 0; i < n_files; i++) {
		snprintf(path, sizeof path, "%s/d%zu.dat", dir, i);
		unlink(path);
	}
	snprintf(path, sizeof path, "%s/plot.gp", dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/log", dir);
	unlink(path);
	rmdir(dir);
}

/* True when the PNG at path ends with its IEND chunk (not cut short by a failed write). */
static int png_complete(const char *path)
{
	static const unsigned char iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
	unsigned char tail[12];
	FILE *f = fopen(path, "rb");
	int ok = f && fseek(f, -12, SEEK_END) == 0 && fread(tail, 1, 12, f) == 12 &&
		 memcmp(tail, iend, 12) == 0;
	if (f)
		fclose(f);
	return ok;
}

/* Why gnuplot's output file could not be written, found out by writing a probe file beside it
 * (at "<file>.probe"): a full disk's ENOSPC, a file size limit's EFBIG; EIO when it succeeds. */
static int write_errno_beside(const char *file)
{
	size_t n = strlen(file) + 8;
	char *probe = malloc(n);
	if (!probe)
		return ENOMEM;
	snprintf(probe, n, "%s.probe", file);
	FILE *f = fopen(probe, "wb");
	if (!f) {
		int e = errno ? errno : EIO;
		free(probe);
		return e;
	}
	static char buf[1 << 16];
	int e = 0;
	for (int i = 0; i < 64 && !e; i++) /* up to 4 MiB: beyond a small size limit */
		if (fwrite(buf, 1, sizeof buf, f) != sizeof buf || fflush(f) != 0)
			e = errno ? errno : EIO;
	if (fclose(f) != 0 && !e)
		e = errno ? errno : EIO;
	unlink(probe);
	free(probe);
	return e ? e : EIO;
}

int bio_plot_png(const char *path, const struct bio_plot_panel *panels, size_t n_panels,
		 size_t n_cols, int width, int height, struct bio_error *err)
{
	if (n_panels == 0 || n_cols == 0 || width < 16 || height < 16)
		return bio_error_set(err, BIO_EINVAL, "%s: nothing to plot", path);
	size_t n_files = 0;
	for (size_t p = 0; p < n_panels; p++)
		n_files += panels[p].n_series;
	const char *tmpdir = getenv("TMPDIR");
	char dir[4096];
	snprintf(dir, sizeof dir, "%s/bio-plot-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
	if (!mkdtemp(dir))
		return bio_error_set(err, BIO_EIO, "%s: temp directory: %s", path, strerror(errno));
	size_t plen = strlen(path);
	char *tmp_png = malloc(plen + 32);
	if (!tmp_png) {
		remove_dir(dir, 0);
		return bio_error_set(err, BIO_ENOMEM, "%s: out of memory", path);
	}
	snprintf(tmp_png, plen + 32, "%s.tmp%ld", path, (long)getpid());
	char script[4200], log[4200];
	snprintf(script, sizeof script, "%s/plot.gp", dir);
	snprintf(log, sizeof log, "%s/log", dir);
	int rc = 0;
	static const char *terminals[] = {"pngcairo font 'sans,10'", "png"};
	for (int ti = 0; ti < 2; ti++) {
		FILE *f = fopen(script, "w");
		if (!f) {
			rc = bio_error_set(err, BIO_EIO, "%s: %s", script, strerror(errno));
			break;
		}
		int wr = write_script(f, dir, terminals[ti], tmp_png, panels, n_panels, n_cols, width,
				      height);
		if (fclose(f) != 0 || wr != 0) {
			rc = bio_error_set(err, BIO_EIO, "%s: writing plot data: %s", path,
					   strerror(errno));
			break;
		}
		int st = run_gnuplot(script, log);
		if (st < 0) {
			rc = bio_error_set(err, BIO_EUNSUPPORTED,
					   "%s: cannot run %s: %s (install gnuplot-nox)", path,
					   gnuplot_prog(), strerror(errno));
			break;
		}
		if (st == 0) {
			struct stat sb;
			if (stat(tmp_png, &sb) == 0 && sb.st_size > 0) {
				if (png_complete(tmp_png)) {
					rc = 0;
					break;
				}
				/* gnuplot exits 0 when its writes fail: a cut PNG is a write error */
				rc = bio_error_set(err, BIO_EIO, "%s: write error: %s", path,
						   strerror(write_errno_beside(tmp_png)));
				break;
			}
		}
		char line[256];
		log_first_line(line, sizeof line, log);
		if (!line[0] && st == 0) {
			rc = bio_error_set(err, BIO_EIO, "%s: write error: %s", path,
					   strerror(write_errno_beside(tmp_png)));
			break;
		}
		rc = bio_error_set(err, BIO_EIO, "%s: gnuplot failed (status %d): %s", path, st,
				   line[0] ? line : "no message");
		unlink(tmp_png);
		/* retry with the libgd png terminal when pngcairo is missing */
	}
	if (rc == 0 && rename(tmp_png, path) != 0)
		rc = bio_error_set(err, BIO_EIO, "%s: %s", path, strerror(errno));
	if (rc)
		unlink(tmp_png);
	free(tmp_png);
	remove_dir(dir, n_files);
	return rc;
}
