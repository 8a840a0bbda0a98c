/* Porter — libnotecenter: center internals.  Never installed.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <libnotecenter/nc.h>
