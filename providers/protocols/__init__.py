"""Protocol translation, free of mitmproxy: a typed turn and stream (`turn`, `events`), and per protocol a request
reader and writer (`messages`, `responses`, `chat`) and a stream reader and writer (`messages_stream`,
`responses_stream`; `chat` holds Chat's stream writer). A direction is a reader joined to a writer — Messages →
Responses is `messages.read_request` then `responses.write_request`, and back `responses_stream.StreamReader` then
`messages_stream.StreamWriter` — never a converter written for one pair."""
