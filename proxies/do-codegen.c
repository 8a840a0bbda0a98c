/* do-codegen: D-Bus introspection XML to a typed C header for Porter.
 *
 *   do-codegen --header OUT.h [--interface-prefix org.example.]
 *              [--c-namespace Example] IN.xml
 *
 * For each interface the header has the vtable struct (one function
 * pointer per method, in the XML's order, with the C signature described in
 * <proxies/do-typed.h>), typed `static inline` call wrappers, the
 * interface's XML, an accessor for its DoInterface (built once), an export
 * function that vends an implementation and a from_object function that
 * gives the typed view of a local object or a proxy.
 *
 * Errors in the XML are reported as `FILE:LINE:COL: message` and the exit
 * status is 1; usage errors exit with 2.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "libdo/do.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------ checking */

/* Where each interface and method starts, and what is wrong, if anything.
 * GDBusNodeInfo does not check argument types; this pass does, with the
 * positions GMarkup knows. */
typedef struct {
  const gchar *xml;
  GHashTable *lines;       /* "iface" or "iface.method" -> GINT_TO_POINTER (line) */
  gchar *iface;            /* the current interface's name */
  gchar *method;           /* the current method's name */
  gboolean method_oneway;
  gboolean method_has_out;
  GHashTable *seen;        /* method names of the current interface */
} Check;

/* Prefixes @error with the position of the '<' starting the element GMarkup
 * is at (its own position may already be past the element's end). */
static void
prefix_element_position (GMarkupParseContext *context, const gchar *xml, GError **error)
{
  gint line, col;
  const gchar *p = xml, *start;

  if (!error || !*error)
    return;
  g_markup_parse_context_get_position (context, &line, &col);
  for (gint l = 1; l < line && *p; p++)
    if (*p == '\n')
      l++;
  for (gint c = 1; c < col && *p && *p != '\n'; c++)
    p = g_utf8_next_char (p);
  while (p > xml && *p != '<')
    p--;
  start = p;
  while (p > xml && p[-1] != '\n')
    p--;
  line = 1;
  for (const gchar *q = xml; q < start; q++)
    line += *q == '\n';
  g_prefix_error (error, "Error on line %d char %ld: ", line,
                  g_utf8_pointer_to_offset (p, start) + 1);
}

static void
check_element (GMarkupParseContext  *context,
               const gchar          *element,
               const gchar         **names,
               const gchar         **values,
               gpointer              user_data,
               GError              **error)
{
  Check *c = user_data;
  const gchar *name = NULL, *type = NULL, *direction = NULL, *value = NULL;
  gint line;

  g_markup_parse_context_get_position (context, &line, NULL);
  for (guint i = 0; names[i]; i++)
    {
      if (strcmp (names[i], "name") == 0)
        name = values[i];
      else if (strcmp (names[i], "type") == 0)
        type = values[i];
      else if (strcmp (names[i], "direction") == 0)
        direction = values[i];
      else if (strcmp (names[i], "value") == 0)
        value = values[i];
    }

  if ((strcmp (element, "interface") == 0 || strcmp (element, "method") == 0) && !name)
    {
      g_set_error (error, G_MARKUP_ERROR, G_MARKUP_ERROR_MISSING_ATTRIBUTE,
                   "element %s has no name", element);
      return;
    }
  if (strcmp (element, "interface") == 0)
    {
      g_free (c->iface);
      c->iface = g_strdup (name);
      g_hash_table_replace (c->lines, g_strdup (name), GINT_TO_POINTER (line));
      g_hash_table_remove_all (c->seen);
    }
  else if (strcmp (element, "method") == 0 && c->iface)
    {
      if (!g_hash_table_add (c->seen, g_strdup (name)))
        {
          g_set_error (error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
                       "method %s is declared twice in %s", name, c->iface);
          return;
        }
      g_free (c->method);
      c->method = g_strdup (name);
      c->method_oneway = c->method_has_out = FALSE;
    }
  else if (strcmp (element, "arg") == 0 && c->method)
    {
      const gchar *end = NULL;

      if (!type || !g_variant_is_signature (type) ||
          !g_variant_type_string_scan (type, NULL, &end) || *end != '\0')
        {
          g_set_error (error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
                       "argument type \"%s\" of %s is not a single complete D-Bus type",
                       type ? type : "", c->method);
          return;
        }
      if (g_strcmp0 (direction, "out") == 0)
        c->method_has_out = TRUE;
    }
  else if (strcmp (element, "annotation") == 0 && c->method &&
           g_strcmp0 (name, "org.freedesktop.DBus.Method.NoReply") == 0 &&
           g_strcmp0 (value, "true") == 0)
    c->method_oneway = TRUE;

  /* Reported at the element that makes the method inconsistent. */
  if (c->method && c->method_oneway && c->method_has_out)
    g_set_error (error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
                 "method %s is oneway (org.freedesktop.DBus.Method.NoReply) "
                 "but has out arguments", c->method);
}

static void
check_start (GMarkupParseContext  *context,
             const gchar          *element,
             const gchar         **names,
             const gchar         **values,
             gpointer              user_data,
             GError              **error)
{
  Check *c = user_data;

  check_element (context, element, names, values, user_data, error);
  prefix_element_position (context, c->xml, error);
}

static void
check_end (GMarkupParseContext  *context,
           const gchar          *element,
           gpointer              user_data,
           GError              **error)
{
  Check *c = user_data;

  if (strcmp (element, "method") == 0)
    g_clear_pointer (&c->method, g_free);
  else if (strcmp (element, "interface") == 0)
    g_clear_pointer (&c->iface, g_free);
}

/* Prints @error as FILE:LINE:COL: message, taking the position from
 * GMarkup's "Error on line N char M: " prefix or GDBus's "N:M: " when there
 * is one. */
static void
report (const gchar *file, const GError *error, gint fallback_line)
{
  gint line = fallback_line, col = 1, consumed = 0;
  const gchar *message = error->message;

  if ((sscanf (message, "Error on line %d char %d: %n", &line, &col, &consumed) >= 2 ||
       sscanf (message, "%d:%d: %n", &line, &col, &consumed) >= 2) && consumed > 0)
    message += consumed;
  else
    line = fallback_line, col = 1;
  g_printerr ("%s:%d:%d: %s\n", file, line, col, message);
}

/* ------------------------------------------------------------ names */

/* "GetHTTPServer" -> "get_http_server"; anything not alphanumeric -> '_'. */
static gchar *
uscore (const gchar *s)
{
  GString *out = g_string_new (NULL);

  for (gsize i = 0; s[i]; i++)
    {
      gchar c = s[i];

      if (!g_ascii_isalnum (c))
        {
          if (out->len && out->str[out->len - 1] != '_')
            g_string_append_c (out, '_');
          continue;
        }
      if (g_ascii_isupper (c) && i > 0 && out->len && out->str[out->len - 1] != '_' &&
          (g_ascii_islower (s[i - 1]) || g_ascii_isdigit (s[i - 1]) ||
           (g_ascii_isupper (s[i - 1]) && g_ascii_islower (s[i + 1]))))
        g_string_append_c (out, '_');
      g_string_append_c (out, g_ascii_tolower (c));
    }
  if (out->len == 0 || g_ascii_isdigit (out->str[0]))
    g_string_prepend_c (out, '_');
  return g_string_free (out, FALSE);
}

/* "foo.bar_baz" -> "FooBarBaz". */
static gchar *
camel (const gchar *s)
{
  GString *out = g_string_new (NULL);
  gboolean up = TRUE;

  for (; *s; s++)
    {
      if (!g_ascii_isalnum (*s))
        {
          up = TRUE;
          continue;
        }
      g_string_append_c (out, up ? g_ascii_toupper (*s) : *s);
      up = FALSE;
    }
  return g_string_free (out, FALSE);
}

static const gchar *
in_ctype (gchar code)
{
  switch (code)
    {
    case 'y': return "guint8 ";
    case 'b': return "gboolean ";
    case 'n': return "gint16 ";
    case 'q': return "guint16 ";
    case 'i': return "gint32 ";
    case 'u': return "guint32 ";
    case 'x': return "gint64 ";
    case 't': return "guint64 ";
    case 'd': return "gdouble ";
    case 'h': return "int ";
    case 's': case 'g': return "const char *";
    case 'o': return "DoObject *";
    default: return "GVariant *";
    }
}

static const gchar *
out_ctype (gchar code)
{
  switch (code)
    {
    case 'y': return "guint8 *";
    case 'b': return "gboolean *";
    case 'n': return "gint16 *";
    case 'q': return "guint16 *";
    case 'i': return "gint32 *";
    case 'u': return "guint32 *";
    case 'x': return "gint64 *";
    case 't': return "guint64 *";
    case 'd': return "gdouble *";
    case 'h': return "int *";
    case 's': case 'g': return "char **";
    case 'o': return "DoObject **";
    default: return "GVariant **";
    }
}

static gboolean
is_variant_arg (gchar code)
{
  return !strchr ("ybnqiuxtdhsgo", code);
}

/* The C name of an argument: arg_NAME / out_NAME, or by position. */
static gchar *
arg_name (GDBusArgInfo *arg, const gchar *prefix, guint index)
{
  g_autofree gchar *base = NULL;

  if (!arg->name || !arg->name[0])
    return g_strdup_printf ("%s%u", prefix, index);
  base = uscore (arg->name);
  return g_strdup_printf ("%s_%s", prefix, base[0] == '_' ? base + 1 : base);
}

/* ------------------------------------------------------------ writing */

typedef struct {
  GString *out;
  const gchar *prefix;     /* --interface-prefix */
  const gchar *ns;         /* --c-namespace */
} Gen;

/* Writes the parameter list after "(Type *self", one per line, each line
 * indented by @indent. */
static void
write_params (GString *out, GDBusMethodInfo *m, guint indent)
{
  for (guint i = 0; m->in_args && m->in_args[i]; i++)
    {
      g_autofree gchar *name = arg_name (m->in_args[i], "arg", i);

      g_string_append_printf (out, ",\n%*s%s%s", indent, "",
                              in_ctype (m->in_args[i]->signature[0]), name);
    }
  for (guint i = 0; m->out_args && m->out_args[i]; i++)
    {
      g_autofree gchar *name = arg_name (m->out_args[i], "out", i);

      g_string_append_printf (out, ",\n%*s%s%s", indent, "",
                              out_ctype (m->out_args[i]->signature[0]), name);
    }
  g_string_append_printf (out, ",\n%*sGError **error)", indent, "");
}

static void
write_c_string (GString *out, const gchar *text)
{
  g_string_append (out, "    \"");
  for (const gchar *p = text; *p; p++)
    {
      if (*p == '\n')
        {
          g_string_append (out, p[1] ? "\\n\"\n    \"" : "\\n");
          continue;
        }
      if (*p == '"' || *p == '\\')
        g_string_append_c (out, '\\');
      g_string_append_c (out, *p);
    }
  g_string_append (out, "\";\n");
}

static void
write_interface (Gen *gen, GDBusInterfaceInfo *info)
{
  GString *out = gen->out;
  const gchar *short_name = info->name;
  g_autofree gchar *type = NULL;
  g_autofree gchar *fn = NULL;
  g_autoptr(GString) xml = g_string_new ("<node>\n");

  if (gen->prefix && g_str_has_prefix (short_name, gen->prefix))
    short_name += strlen (gen->prefix);
  {
    g_autofree gchar *c = camel (short_name);
    type = g_strconcat (gen->ns ? gen->ns : "", c, NULL);
  }
  fn = uscore (type);
  g_dbus_interface_info_generate_xml (info, 2, xml);
  g_string_append (xml, "</node>\n");

  g_string_append_printf (out, "/* ------------------------------------------------------------ %s */\n\n", info->name);
  g_string_append_printf (out, "typedef struct _%s %s;\n\n", type, type);
  g_string_append_printf (out,
                          "/**\n * %s:\n", type);
  for (guint i = 0; info->methods && info->methods[i]; i++)
    {
      g_autofree gchar *member = uscore (info->methods[i]->name);
      g_string_append_printf (out, " * @%s: the %s method.\n", member, info->methods[i]->name);
    }
  g_string_append_printf (out,
                          " *\n"
                          " * The vtable of %s.  Implement it by embedding it first in your own\n"
                          " * struct and filling the pointers, then vend it with %s_export();\n"
                          " * %s_from_object() gives it for a proxy.\n"
                          " */\n"
                          "struct _%s\n{\n", info->name, fn, fn, type);
  for (guint i = 0; info->methods && info->methods[i]; i++)
    {
      GDBusMethodInfo *m = info->methods[i];
      g_autofree gchar *member = uscore (m->name);

      g_string_append_printf (out, "  gboolean (*%s) (%s *self", member, type);
      write_params (out, m, (guint) (strlen (member) + 16));
      g_string_append (out, ";\n");
    }
  g_string_append (out, "};\n\n");

  /* The interface. */
  g_string_append_printf (out,
                          "/**\n"
                          " * %s_get_interface:\n"
                          " *\n"
                          " * Thread rules: any thread.\n"
                          " *\n"
                          " * Returns: (transfer none): %s, built on first use and kept.\n"
                          " */\n"
                          "static inline DoInterface *\n"
                          "%s_get_interface (void)\n"
                          "{\n"
                          "  static const char xml[] =\n",
                          fn, info->name, fn);
  write_c_string (out, xml->str);
  g_string_append_printf (out,
                          "  static gsize once;\n"
                          "\n"
                          "  if (g_once_init_enter (&once))\n"
                          "    {\n"
                          "      GError *error = NULL;\n"
                          "      DoInterface *iface = do_interface_new_for_xml (xml, \"%s\", &error);\n"
                          "\n"
                          "      if (!iface)\n"
                          "        g_error (\"%%s\", error->message);\n"
                          "      g_once_init_leave (&once, (gsize) iface);\n"
                          "    }\n"
                          "  return (DoInterface *) once;\n"
                          "}\n\n", info->name);

  g_string_append_printf (out,
                          "/**\n"
                          " * %s_export:\n"
                          " * @impl: an implementation: a struct whose first member is a filled %s.\n"
                          " * @destroy: (nullable): frees @impl when the object is finalized.\n"
                          " *\n"
                          " * Thread rules: any thread; the methods run where the object is dispatched.\n"
                          " *\n"
                          " * Returns: (transfer full): an object to vend.\n"
                          " */\n"
                          "static inline DoObject *\n"
                          "%s_export (%s *impl,\n"
                          "%*sGDestroyNotify destroy)\n"
                          "{\n"
                          "  return do_object_new_for_instance (%s_get_interface (), impl, destroy);\n"
                          "}\n\n",
                          fn, type, fn, type, (int) (strlen (fn) + 9), "", fn);

  g_string_append_printf (out,
                          "/**\n"
                          " * %s_from_object:\n"
                          " * @object: a local object or a proxy.\n"
                          " * @error: return location for a #GError.\n"
                          " *\n"
                          " * Thread rules: any thread.\n"
                          " *\n"
                          " * Returns: (transfer none) (nullable): the typed view of @object, valid\n"
                          " *   while it lives.\n"
                          " */\n"
                          "static inline %s *\n"
                          "%s_from_object (DoObject *object,\n"
                          "%*sGError **error)\n"
                          "{\n"
                          "  return (%s *) do_object_get_typed (object, %s_get_interface (), error);\n"
                          "}\n",
                          fn, type, fn, (int) (strlen (fn) + 14), "", type, fn);

  /* The wrappers. */
  for (guint i = 0; info->methods && info->methods[i]; i++)
    {
      GDBusMethodInfo *m = info->methods[i];
      g_autofree gchar *member = uscore (m->name);
      g_autofree gchar *wrapper = g_strdup_printf ("%s_%s", fn, member);
      guint n_variants = 0;

      for (guint a = 0; m->in_args && m->in_args[a]; a++)
        n_variants += is_variant_arg (m->in_args[a]->signature[0]);

      g_string_append_printf (out,
                              "\n/**\n"
                              " * %s:\n"
                              " *\n"
                              " * Calls %s.%s through @self's vtable%s.\n"
                              " *\n"
                              " * Returns: %%TRUE on success, or %%FALSE with @error set.\n"
                              " */\n"
                              "static inline gboolean\n"
                              "%s (%s *self",
                              wrapper, info->name, m->name,
                              n_variants ? "; a floating GVariant argument is sunk" : "",
                              wrapper, type);
      write_params (out, m, (guint) (strlen (wrapper) + 2));
      g_string_append (out, "\n{\n");
      if (n_variants)
        g_string_append (out, "  gboolean ret;\n\n");
      g_string_append (out, "  g_return_val_if_fail (self != NULL, FALSE);\n");
      for (guint a = 0; m->in_args && m->in_args[a]; a++)
        if (is_variant_arg (m->in_args[a]->signature[0]))
          {
            g_autofree gchar *name = arg_name (m->in_args[a], "arg", a);
            g_string_append_printf (out, "  g_return_val_if_fail (%s != NULL, FALSE);\n", name);
          }
      for (guint a = 0; m->in_args && m->in_args[a]; a++)
        if (is_variant_arg (m->in_args[a]->signature[0]))
          {
            g_autofree gchar *name = arg_name (m->in_args[a], "arg", a);
            g_string_append_printf (out, "  g_variant_ref_sink (%s);\n", name);
          }
      g_string_append_printf (out, "  %sself->%s (self", n_variants ? "ret = " : "return ", member);
      for (guint a = 0; m->in_args && m->in_args[a]; a++)
        {
          g_autofree gchar *name = arg_name (m->in_args[a], "arg", a);
          g_string_append_printf (out, ", %s", name);
        }
      for (guint a = 0; m->out_args && m->out_args[a]; a++)
        {
          g_autofree gchar *name = arg_name (m->out_args[a], "out", a);
          g_string_append_printf (out, ", %s", name);
        }
      g_string_append (out, ", error);\n");
      for (guint a = 0; m->in_args && m->in_args[a]; a++)
        if (is_variant_arg (m->in_args[a]->signature[0]))
          {
            g_autofree gchar *name = arg_name (m->in_args[a], "arg", a);
            g_string_append_printf (out, "  g_variant_unref (%s);\n", name);
          }
      if (n_variants)
        g_string_append (out, "  return ret;\n");
      g_string_append (out, "}\n");
    }
  g_string_append (out, "\n");
}

int
main (int argc, char **argv)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *header = NULL;
  g_autofree gchar *prefix = NULL;
  g_autofree gchar *ns = NULL;
  g_autofree gchar *xml = NULL;
  g_autoptr(GDBusNodeInfo) node = NULL;
  g_autoptr(GString) out = NULL;
  g_autofree gchar *base = NULL;
  Check check = { 0, };
  GMarkupParser parser = { check_start, check_end, NULL, NULL, NULL };
  GMarkupParseContext *markup;
  gboolean ok;
  Gen gen;
  GOptionEntry entries[] = {
    { "header", 0, 0, G_OPTION_ARG_FILENAME, &header, "Write the typed header to FILE", "FILE" },
    { "interface-prefix", 0, 0, G_OPTION_ARG_STRING, &prefix,
      "Strip PREFIX from interface names (e.g. org.example.)", "PREFIX" },
    { "c-namespace", 0, 0, G_OPTION_ARG_STRING, &ns,
      "Prefix C type names with NAMESPACE (e.g. Example)", "NAMESPACE" },
    G_OPTION_ENTRY_NULL
  };

  setlocale (LC_ALL, "");
  context = g_option_context_new ("IN.xml - typed C headers for Porter interfaces");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("do-codegen: %s\n", error->message);
      return 2;
    }
  if (argc != 2 || !header)
    {
      g_printerr ("do-codegen: usage: do-codegen --header OUT.h [--interface-prefix P] "
                  "[--c-namespace NS] IN.xml\n");
      return 2;
    }
  if (!g_file_get_contents (argv[1], &xml, NULL, &error))
    {
      g_printerr ("do-codegen: %s\n", error->message);
      return 1;
    }

  /* Our own pass first: argument types and positions. */
  check.xml = xml;
  check.lines = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  check.seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  markup = g_markup_parse_context_new (&parser, 0, &check, NULL);
  ok = g_markup_parse_context_parse (markup, xml, -1, &error) &&
       g_markup_parse_context_end_parse (markup, &error);
  g_markup_parse_context_free (markup);
  g_free (check.iface);
  g_free (check.method);
  g_hash_table_unref (check.seen);
  if (!ok)
    {
      report (argv[1], error, 1);
      g_hash_table_unref (check.lines);
      return 1;
    }

  node = g_dbus_node_info_new_for_xml (xml, &error);
  if (!node)
    {
      report (argv[1], error, 1);
      g_hash_table_unref (check.lines);
      return 1;
    }
  for (guint i = 0; node->interfaces && node->interfaces[i]; i++)
    {
      g_autoptr(DoInterface) iface = do_interface_new (node->interfaces[i], &error);

      if (!iface)
        {
          report (argv[1], error,
                  GPOINTER_TO_INT (g_hash_table_lookup (check.lines, node->interfaces[i]->name)));
          g_hash_table_unref (check.lines);
          return 1;
        }
    }
  g_hash_table_unref (check.lines);

  out = g_string_new (NULL);
  base = g_path_get_basename (argv[1]);
  g_string_append_printf (out,
                          "/* Generated by do-codegen from %s.  Do not edit. */\n"
                          "#pragma once\n\n"
                          "#include <libdo/do.h>\n\n"
                          "G_BEGIN_DECLS\n\n", base);
  gen.out = out;
  gen.prefix = prefix;
  gen.ns = ns;
  for (guint i = 0; node->interfaces && node->interfaces[i]; i++)
    write_interface (&gen, node->interfaces[i]);
  g_string_append (out, "G_END_DECLS\n");

  if (!g_file_set_contents (header, out->str, (gssize) out->len, &error))
    {
      g_printerr ("do-codegen: %s\n", error->message);
      return 1;
    }
  return 0;
}
