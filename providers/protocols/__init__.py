"""Protocol translation, free of mitmproxy: a typed turn and stream (`turn`, `events`), and per protocol a reader and
a writer (`messages` for Anthropic Messages, `responses` for OpenAI Responses). A direction is a reader joined to a
writer — Messages → Responses is `messages.read_request` then `responses.write_request`, and back
`responses.StreamReader` then `messages.StreamWriter` — never a converter written for one pair."""
