"""URL canonicalisation. (Placeholder; the dedupe helper owns this package.)"""

from w3lib.url import canonicalize_url as _w3lib_canonicalize


def canonicalize_url(url: str) -> str:
    return _w3lib_canonicalize(url, keep_fragments=False)
