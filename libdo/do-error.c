/* Porter — libdo: the DO_ERROR domain, registered so errors cross
 * processes (and D-Bus) by name.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "do-error.h"

static const GDBusErrorEntry do_error_entries[] = {
  { DO_ERROR_FAILED, "org.porter.Error.Failed" },
  { DO_ERROR_INVALID_ARGUMENT, "org.porter.Error.InvalidArgument" },
  { DO_ERROR_CONNECTION_DIED, "org.porter.Error.ConnectionDied" },
  { DO_ERROR_TIMED_OUT, "org.porter.Error.TimedOut" },
  { DO_ERROR_PROTOCOL, "org.porter.Error.Protocol" },
  { DO_ERROR_NAME_NOT_FOUND, "org.porter.Error.NameNotFound" },
  { DO_ERROR_NAME_TAKEN, "org.porter.Error.NameTaken" },
  { DO_ERROR_NO_SUCH_OBJECT, "org.porter.Error.NoSuchObject" },
  { DO_ERROR_UNKNOWN_METHOD, "org.porter.Error.UnknownMethod" },
  { DO_ERROR_INVALID_SIGNATURE, "org.porter.Error.InvalidSignature" },
  { DO_ERROR_ACCESS_DENIED, "org.porter.Error.AccessDenied" },
  { DO_ERROR_BROKER, "org.porter.Error.Broker" },
  { DO_ERROR_CLOSED, "org.porter.Error.Closed" },
  { DO_ERROR_LIMITS_EXCEEDED, "org.porter.Error.LimitsExceeded" },
};
G_STATIC_ASSERT (G_N_ELEMENTS (do_error_entries) == DO_ERROR_LIMITS_EXCEEDED + 1);

/**
 * do_error_quark:
 *
 * Thread rules: any thread.
 *
 * Returns: the `do-error-quark` domain of #DoError.
 */
GQuark
do_error_quark (void)
{
  static gsize quark = 0;

  g_dbus_error_register_error_domain ("do-error-quark", &quark,
                                      do_error_entries,
                                      G_N_ELEMENTS (do_error_entries));
  return (GQuark) quark;
}
