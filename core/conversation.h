/* conversation.h: what clients send as a conversation, made safe to use.
 *
 * Shared by the HTTP routes (api_completions.c, api_streams.c) and the
 * Socket.IO gateway, so both front ends accept exactly the same input. */
#ifndef CHAT_CONVERSATION_H
#define CHAT_CONVERSATION_H

#include <stddef.h>

#include <json-c/json.h>

#define CONVERSATION_MESSAGES_MAX 200

enum conversation_rc {
	CONVERSATION_OK = 0,
	CONVERSATION_INVALID,     /* the client's input: answer 400 */
	CONVERSATION_NO_MEMORY,   /* ours: answer 500 */
};

/* Validates a client's messages (an array of {role, content}, content a
 * string or OpenAI's array of text parts) into a new [{role, content}]
 * array with string content (each at most LIMIT_CONTENT_BYTES); at most
 * CONVERSATION_MESSAGES_MAX, possibly
 * empty. arr and field are borrowed. On CONVERSATION_OK *out is the new
 * array (caller puts it); otherwise *out is NULL and err holds the problem,
 * naming the element as field[i]. */
enum conversation_rc conversation_clean(json_object *arr, const char *field, json_object **out,
    char *err, size_t errlen);

/* Writes a session title: the message's first 60 characters (whole UTF-8
 * characters), line breaks and tabs turned into spaces. */
void conversation_title(const char *message, char *out, size_t len);

#endif
