package html

// ShortUserAgent is shortUserAgent, for tests.
var ShortUserAgent = shortUserAgent
