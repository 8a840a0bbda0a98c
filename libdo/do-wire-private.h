/* Porter — libdo: the wire format (DESIGN.md §4).  Knows nothing of objects.
 *
 * A message is a fixed little-endian header, three NUL-terminated strings
 * (interface, method, signature), padding to 8 bytes, then the body: a
 * GVariant in normal form whose type is the signature (always a tuple).
 * With DO_WIRE_FLAG_BODY_OOL the body is not in the packet: it lives in the
 * last attached fd, a sealed memfd of exactly body_len bytes.  With
 * DO_WIRE_FLAG_BODY_REMOTE (a CALL only) it stays in the sender's memory,
 * for the receiver to copy out (do-direct.c): the packet
 * holds, where the body would be, a little-endian count of pieces, then
 * each piece's address and length; the pieces, in order, are the body's
 * body_len bytes.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <sys/types.h>
#include "do-types.h"

G_BEGIN_DECLS

#define DO_WIRE_MAGIC 0x31525044u /* "DPR1" */

typedef enum {
  DO_MESSAGE_CALL = 1,
  DO_MESSAGE_ONEWAY,
  DO_MESSAGE_REPLY,
  DO_MESSAGE_ERROR,
  DO_MESSAGE_RELEASE,
  DO_MESSAGE_CONNECT,
  DO_MESSAGE_HELLO,
  DO_MESSAGE_BYE,
} DoMessageKind;
#define DO_MESSAGE_KIND_LAST DO_MESSAGE_BYE

enum {
  DO_WIRE_FLAG_BODY_OOL = 1 << 0,
  DO_WIRE_FLAG_BODY_REMOTE = 1 << 1,
};
#define DO_WIRE_KNOWN_FLAGS (DO_WIRE_FLAG_BODY_OOL | DO_WIRE_FLAG_BODY_REMOTE)

/* Where an encoded message's body is. */
typedef enum {
  DO_WIRE_BODY_INLINE,
  DO_WIRE_BODY_MEMFD,   /* a sealed memfd, the last fd */
  DO_WIRE_BODY_REMOTE,  /* the sender's memory, in pieces */
} DoWireBodyPlace;

typedef struct {
  guint64 addr;
  guint64 len;
} DoWirePiece;
#define DO_WIRE_MAX_PIECES 2

typedef struct {
  guint32 magic;
  guint8 kind;
  guint8 flags;
  guint16 n_fds;         /* fds attached, the out-of-line body's included */
  guint32 serial;
  guint32 reply_serial;
  guint64 object_id;
  guint16 interface_len; /* string lengths, NUL excluded */
  guint16 method_len;
  guint16 signature_len;
  guint16 reserved;      /* must be 0 */
  guint64 body_len;      /* bytes of body, inline or out of line */
} DoWireHeader;
G_STATIC_ASSERT (sizeof (DoWireHeader) == 40);

/* Limits: anything over them is a protocol error. */
#define DO_WIRE_MAX_FDS 64          /* user fds per message */
#define DO_WIRE_CONNECT_MAX_FDS 6   /* a socket, and a shared-memory offer */
#define DO_WIRE_MAX_NAME 255        /* interface and method names */
#define DO_WIRE_MAX_SIGNATURE 255   /* as D-Bus */
#define DO_WIRE_MAX_BODY ((guint64) 1 << 30)  /* 1 GiB, out of line */
#define DO_WIRE_INLINE_MAX (60 * 1024)   /* bigger bodies go out of line */
#define DO_WIRE_MAX_PACKET (64 * 1024)   /* header + strings + inline body */
#define DO_WIRE_MAX_REMOTE_BODY ((guint64) 256 << 20) /* read from the sender */

/* A decoded message.  Immutable once built; refcounted. */
typedef struct {
  gint ref_count;
  DoMessageKind kind;
  guint8 flags;
  guint32 serial;
  guint32 reply_serial;
  guint64 object_id;
  gchar *interface;      /* "" when absent */
  gchar *method;         /* "" when absent */
  GVariant *body;        /* never NULL; a tuple */
  int *fds;              /* owned, closed on free; the OOL fd is not here */
  guint n_fds;
  DoCredentials creds;   /* sender, from SCM_CREDENTIALS; pid 0 if unknown */
  gboolean caller_waits; /* not on the wire: a sync caller waits for the
                          * answer, so its body stays put meanwhile */
} DoMessage;

DoMessage *do_message_new (DoMessageKind kind,
                           guint64 object_id,
                           const gchar *interface,
                           const gchar *method,
                           GVariant *body);          /* NULL means "()"; sunk */
/* A reference to the one shared empty body, "()". */
GVariant *do_wire_empty_body (void);
DoMessage *do_message_new_error (guint32 reply_serial,
                                 const GError *error);
DoMessage *do_message_ref (DoMessage *msg);
void do_message_unref (DoMessage *msg);
/* Takes ownership of @fds (closed on failure too). */
gboolean do_message_take_fds (DoMessage *msg, int *fds, guint n_fds, GError **error);
/* The error carried by an ERROR message, mapped back to its domain. */
GError *do_message_to_gerror (DoMessage *msg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DoMessage, do_message_unref)

/* Encodes header + strings (+ the body unless @ool) into a new buffer.
 * @ool: encode with the body out of line (the caller sends the body's bytes
 * in a memfd as the last fd). */
GBytes *do_wire_encode (const DoMessage *msg, gboolean ool);
/* The same into @buf, the body where @place says (for REMOTE, @pieces are
 * its bytes in the sender's memory): returns the encoded size, and writes
 * only when it is at most @buf_size. */
gsize do_wire_encode_into (const DoMessage *msg, DoWireBodyPlace place,
                           const DoWirePiece *pieces, guint n_pieces,
                           guint8 *buf, gsize buf_size);

/* Splits a body `(F..., A)` (fixed-size members, then an array) whose
 * serialised bytes are those of the returned tuple, then those of @array
 * (both owned); NULL for a body of any other shape. */
GVariant *do_wire_body_split (GVariant *body, GVariant **array);

/* Copies a REMOTE body's @n_pieces pieces, @len bytes in all, out of the
 * sender's memory into private memory. */
typedef GBytes *(*DoWireFetch) (gpointer data, const DoWirePiece *pieces, guint n_pieces,
                                gsize len, GError **error);

/* Parses a packet.  @fds are the fds that arrived with it (the array is
 * borrowed; the descriptors are taken: kept by the message or closed); of
 * them, when the header says the body is out of line, the last
 * of them is the memfd holding it and is checked (sealed, exact size) and
 * mapped read-only.  A REMOTE body is fetched with @fetch (NULL: such a
 * body is a protocol error).  Every length, count, name and the body's
 * type and normal form are checked; on failure returns NULL with a
 * DO_ERROR_PROTOCOL error saying what was wrong. */
DoMessage *do_wire_decode (const guint8 *data,
                           gsize len,
                           int *fds,
                           guint n_fds,
                           DoWireFetch fetch,
                           gpointer fetch_data,
                           GError **error);

/* Maps a GError to/from the wire: domain as a string, code, message. */
const gchar *do_message_kind_to_string (DoMessageKind kind);

G_END_DECLS
