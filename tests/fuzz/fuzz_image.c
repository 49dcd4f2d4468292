/* libFuzzer harness for the image decoders: bio_image_decode on arbitrary bytes (format sniffed
 * from the magic bytes, so every decoder is reached), then both resize filters on the result
 * with a plan and the u8 variant. Limits are lowered so a fuzz input cannot make one run slow. */
#include <stdint.h>
#include <stdlib.h>

#include "bio/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bio_image_limits lim;
	bio_image_limits_default(&lim);
	lim.max_width = 4096;
	lim.max_height = 4096;
	lim.max_pixels = 1u << 22;
	struct bio_error err;
	struct bio_image img;
	if (bio_image_decode(&img, data, size, "fuzz", &lim, &err) < 0)
		return 0;
	BIO_ASSERT(img.pixels && img.width > 0 && img.height > 0);
	uint32_t ow = 1 + (uint32_t)(size % 23), oh = 1 + (uint32_t)(size % 17);
	float out[23 * 17];
	uint8_t out8[23 * 17];
	for (int f = 0; f < 2; f++) {
		enum bio_resize_filter filter = f ? BIO_RESIZE_AREA : BIO_RESIZE_BILINEAR;
		struct bio_resize_plan *plan;
		if (bio_image_resize_plan_new(&plan, img.width, img.height, ow, oh, filter, &err) < 0)
			continue;
		if (bio_image_resize_planned(out, plan, &img, &err) == 0 &&
		    bio_image_resize_planned_u8(out8, plan, &img, &err) == 0)
			for (uint32_t i = 0; i < ow * oh; i++)
				BIO_ASSERT(out[i] >= 0.0f && out[i] <= 255.0f &&
					   (int)(out[i] + 0.5f) == out8[i]);
		bio_image_resize_plan_free(plan);
	}
	bio_image_destroy(&img);
	return 0;
}
