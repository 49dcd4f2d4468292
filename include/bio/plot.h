/* PNG line plots (DET, ROC, CMC, score histograms, training curves) drawn by gnuplot (Debian
 * gnuplot-nox) run as a subprocess on a generated script: linear, log and normal-deviate (probit,
 * NIST DETware ppndf) axes, the probit axes ticked at probabilities. The program is $BIO_GNUPLOT
 * or "gnuplot" on PATH; the pngcairo terminal is used when present, else png. */
#ifndef BIO_PLOT_H
#define BIO_PLOT_H

#include <stddef.h>

#include "bio/error.h"

enum bio_plot_scale {
	BIO_SCALE_LINEAR,
	BIO_SCALE_LOG,    /* values <= 0 are left out */
	BIO_SCALE_PROBIT, /* values are probabilities, drawn at bio_ppndf(value) */
};

enum bio_plot_style {
	BIO_STYLE_LINES,
	BIO_STYLE_STEPS,       /* histogram outline: x are the left bin edges */
	BIO_STYLE_LINESPOINTS,
	BIO_STYLE_BOXES,       /* filled translucent bars centred on x */
};

struct bio_plot_series {
	const char *title;     /* legend entry (NULL: none) */
	const double *x, *y;   /* n points, borrowed */
	size_t n;
	enum bio_plot_style style;
};

struct bio_plot_panel {
	const char *title, *xlabel, *ylabel;
	enum bio_plot_scale xscale, yscale;
	int has_xrange, has_yrange; /* else gnuplot's autoscale */
	double xmin, xmax, ymin, ymax; /* probabilities on probit axes */
	const struct bio_plot_series *series;
	size_t n_series;
	int diagonal;       /* draw the line y = x (the EER line of a DET plot) */
	double vline;       /* draw a dashed vertical line at x = vline when has_vline */
	int has_vline;
	const char *vline_title;
	const char *key_pos; /* gnuplot legend position ("top left", ...); NULL: a default */
	int integer_x;       /* x values are counts (epochs): integer ticks only */
};

/* 1 when the gnuplot program can be run. */
int bio_plot_available(void);

/* Draws n_panels panels on a grid of n_cols columns into a width x height PNG at path, written to
 * a temp file and renamed into place. Fails with BIO_EUNSUPPORTED when gnuplot is missing, BIO_EIO
 * with gnuplot's first error line when it fails. */
int bio_plot_png(const char *path, const struct bio_plot_panel *panels, size_t n_panels,
		 size_t n_cols, int width, int height, struct bio_error *err);

#endif
