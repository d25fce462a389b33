"""Default settings of newswatch, grouped by component. The project's ``settings.py``
imports these; ``scrapy crawl`` and ``newswatch`` read the same values."""

from scrapy.settings import default_settings as _scrapy_defaults

BOT_NAME = "newswatch"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

# -- politeness -----------------------------------------------------------------------
USER_AGENT = "newswatch/0.1 (+https://github.com/newswatch/newswatch; news monitoring bot)"
ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 32
CONCURRENT_REQUESTS_PER_DOMAIN = 8
CONCURRENT_ITEMS = 8  # an article page yields one item: 100 parallel slots only cost reactor time
DOWNLOAD_DELAY = 0
DOWNLOAD_TIMEOUT = 30
DOWNLOAD_MAXSIZE = 16 * 1024 * 1024
DOWNLOAD_WARNSIZE = 4 * 1024 * 1024
RETRY_ENABLED = True
RETRY_TIMES = 2
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
RETRY_BACKOFF_BASE = 0.5
RETRY_BACKOFF_MAX = 30.0
RETRY_GIVE_UP_LOG_LEVEL = "DEBUG"  # the spider logs each failure once, with its URL
DOWNLOADER_MIDDLEWARES = {
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "crawler.middlewares.BackoffRetryMiddleware": 550,
}
REDIRECT_MAX_TIMES = 5
# Scrapy 2.19's downloader can exceed CONCURRENT_REQUESTS_PER_DOMAIN (crawler/downloader.py).
DOWNLOADER = "crawler.downloader.PoliteDownloader"

# -- pipelines ------------------------------------------------------------------------
ITEM_PIPELINES = {
    "crawler.pipelines.ExtractPipeline": 100,
    "crawler.pipelines.DedupePipeline": 200,
    "crawler.pipelines.MatchPipeline": 300,
    "crawler.pipelines.StorePipeline": 400,
}
EXTRACT_WORKERS = 2  # worker processes for extraction; 0 extracts on the reactor thread
CRAWL_PROCESSES = 1  # `newswatch crawl`: crawler processes the sources are split over (0: one per CPU)
EXTRACT_LEARN_TEMPLATES = True  # learn each site's repeated boilerplate and remove it
EXTRACT_TEMPLATE_SAVE_EVERY = 20  # pages of a site between saves of its learned template
DEDUPE_NEAR_THRESHOLD = 0.5
DEDUPE_WINDOW_DAYS = 30
STORE_BATCH_SIZE = 100  # articles stored per transaction at most (1: one transaction each)
STORE_BATCH_DELAY = 0.25  # seconds an article waits for others to share its transaction
STORE_THREAD = True  # batches written by a thread of their own, so the reactor goes on fetching

# -- alerts ---------------------------------------------------------------------------
ALERTS_FLOOD_LIMIT = 20  # instant alerts per subscription and window before they are batched
ALERTS_FLOOD_WINDOW = 600  # seconds
ALERTS_MAX_ATTEMPTS = 8  # sends before an alert is dead-lettered (`newswatch alerts list --failed`)
ALERTS_RETRY_BASE_DELAY = 30  # seconds; doubles per attempt, with jitter, up to the max
ALERTS_RETRY_MAX_DELAY = 21600
ALERTS_LEASE = 300  # seconds a dispatcher owns an alert it is sending before another may retry it
ALERTS_WEBHOOK_SECRET = None  # default HMAC secret for webhooks of subscriptions without one
# E-mail: ALERTS_SMTP_HOST, _PORT, _FROM, _USER, _PASSWORD, _STARTTLS, _SSL, _TIMEOUT, as
# settings or environment variables (settings win); unset host = no e-mail targets.

# -- store ----------------------------------------------------------------------------
NEWSWATCH_DB = None  # SQLAlchemy URL; None: $NEWSWATCH_DB or sqlite:///data/newswatch.db
NEWSWATCH_WATCH = []  # ad hoc watch queries (`newswatch crawl --watch`)

# -- sources --------------------------------------------------------------------------
SOURCES_SITEMAP_MAX_PAGES = 500
# `newswatch crawl --processes N` sets these for its processes (crawler.shards): the plan
# of which sources are whose, and this process's number in it.
SOURCES_PLAN = None
SOURCES_PLAN_PROCESS = 0
SOURCES_TAKE_BELOW = None  # take the next source when fewer requests wait (None: CONCURRENT_REQUESTS)

# -- engine ---------------------------------------------------------------------------
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
TELNETCONSOLE_ENABLED = False
# Scrapy 2.19's RemoteControl: an HTTP server per crawl that runs Python code sent to it
# (its token in a file under the user's profile). Not for an unattended service.
REMOTE_CONTROL_ENABLED = False
# ... and neither it nor the telnet console is even loaded: a disabled extension is still
# imported (aiohttp with RemoteControl, twisted.conch with TelnetConsole: ~0.1 s per
# crawl process). Whoever wants the console back lists scrapy.extensions.telnet.TelnetConsole
# in EXTENSIONS and sets TELNETCONSOLE_ENABLED.
EXTENSIONS_BASE = {path: order for path, order in _scrapy_defaults.EXTENSIONS_BASE.items()
                   if not path.endswith((".RemoteControl", ".TelnetConsole"))}
LOG_LEVEL = "INFO"
LOG_FORMATTER = "crawler.logformatter.NewswatchLogFormatter"
FEED_EXPORT_ENCODING = "utf-8"
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"

# -- extensions -----------------------------------------------------------------------
EXTENSIONS = {
    "crawler.gc_tuning.GarbageCollectorTuning": 0,
    "crawler.monitoring.SentryExtension": 100,  # on when SENTRY_DSN is set
    "crawler.progress.ProgressExtension": 500,
}
GC_FREEZE = True  # objects alive when the crawl starts kept out of garbage collections
GC_THRESHOLD = [50_000, 20, 100]  # gc.set_threshold while a crawl runs ([]: Python's own)
PROGRESS_ENABLED = False  # `newswatch crawl` switches it on when stderr is a terminal
PROGRESS_INTERVAL = 0.5
PROGRESS_FILE = None  # the counters as JSON here instead of on stderr (set by `crawl --processes` for its processes)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_DATEFORMAT = "%H:%M:%S"

# -- scale-out ------------------------------------------------------------------------
FRONTIER_REDIS_URL = None  # e.g. redis://127.0.0.1:6379/0: share the crawl frontier in Redis
FRONTIER_REDIS_PREFIX = "newswatch"
FRONTIER_DUPEFILTER_TTL = 600  # seconds a fetched page stays in the shared fingerprint set
