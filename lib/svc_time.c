/* SPDX-License-Identifier: MIT */
/* Time as the services keep it; see svc_time.h. */
#include "svc_time.h"

#include <backend/clock.h>

int64_t be__svc_now(const be__app_res *res) { return be_clock_wall_ns(res->opts.clock); }
