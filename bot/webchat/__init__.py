"""The council's website as a residents' channel: the web chat served by the public edge.

One concept per module: :mod:`~bot.webchat.config` (the profile's ``webchat`` section),
:mod:`~bot.webchat.tokens` (signed conversation tokens), :mod:`~bot.webchat.events` (each
conversation's durable event stream), :mod:`~bot.webchat.fanout` (one Redis reader per edge
process waking the open event streams), :mod:`~bot.webchat.limits` (rate limits),
:mod:`~bot.webchat.retained` (what stores of conversations' data share),
:mod:`~bot.webchat.uploads` (residents' photos), :mod:`~bot.webchat.pins` (locations residents
share), :mod:`~bot.webchat.phone` (continuing on SMS
or WhatsApp), :mod:`~bot.webchat.status` (bot / waiting / agent, typing),
:mod:`~bot.webchat.adapter` (the channel adapter the outbox sends through),
:mod:`~bot.webchat.rasa` (its Rasa input: the server's workers), :mod:`~bot.webchat.residents`
(what residents' export and erasure cover), :mod:`~bot.webchat.app` (the HTTP routes),
:mod:`~bot.webchat.assets` (the widget's files) and :mod:`~bot.webchat.sample` (a sample
council site). The protocol: ``docs/webchat.md``; the widget: ``docs/webchat-widget.md``.
"""
