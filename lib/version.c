/* SPDX-License-Identifier: MIT */
#include <backend/version.h>

uint32_t be_version_number(void) { return BE_VERSION_NUMBER; }

const char *be_version_string(void) { return BE_VERSION_STRING; }
