/* SPDX-License-Identifier: MIT */
/* backend-cli: the program's entry point; the work is cli_main()'s
 * (cli/dispatch.c). */
#include "cli.h"

int main(int argc, char **argv) { return cli_main(argc, argv); }
