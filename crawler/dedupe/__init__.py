"""Deduplication: URL canonicalisation, content fingerprints, near-duplicate stories.

- :func:`crawler.dedupe.urls.canonicalize_url` — one comparison key per article URL.
- :mod:`crawler.dedupe.fingerprints` — normalised text, ``content_hash``, shingles, MinHash.
- :func:`crawler.dedupe.exact.find_duplicate` — the stored article a new one repeats.
- :class:`crawler.dedupe.stories.StoryIndex` — the persistent near-duplicate index that
  gives every copy of a story the same ``story_id``; :func:`~crawler.dedupe.stories.story_info`.
"""
