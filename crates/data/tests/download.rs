//! Downloading MNIST from mirrors served on 127.0.0.1 by the test itself (real MNIST, found through
//! MNIST_DIR or the cache): verified files land in the cache; a corrupted file, a truncated one, a 404
//! and a refused connection each give their error, leave no file behind, and pass on to the next
//! mirror; a second call makes no request. No test here reaches the internet.

use std::path::PathBuf;

use crate::mirror::{Fault, Mirror, entries, refused_url};
use data::{DownloadError, Event, LineProgress, Mirrors, MnistFiles, Progress, SourceError};

fn tempdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("data-download-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn mirrors(urls: &[&str]) -> Mirrors {
    Mirrors::new(urls.iter().map(|url| url.to_string()), "the test").unwrap()
}

const STORED: [&str; 4] = [
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
];

/// Records failures as text, for checking what the next mirror was tried after.
#[derive(Default)]
struct Failures(Vec<String>);

impl Progress for Failures {
    fn event(&mut self, event: Event<'_>) {
        if let Event::Failed { file, error } = event {
            self.0.push(format!("{file}: {error}"));
        }
    }
}

#[test]
fn a_download_into_an_empty_cache_is_verified_and_then_found_without_a_request() {
    let good = Mirror::start(Fault::None);
    let cache = tempdir("fresh").join("nested");
    let mut lines = LineProgress(Vec::new());
    let files = MnistFiles::download_into(&cache, &mirrors(&[&good.url]), &mut lines).unwrap();
    assert_eq!(entries(&cache), STORED);
    assert_eq!(good.requests(), 4);
    let train = files.load(data::Split::Train).unwrap();
    assert_eq!(burn::data::dataset::Dataset::len(&train), 60_000);

    // The plain progress: where the files go, one line per file, where they are.
    let text = String::from_utf8(lines.0).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    assert_eq!(
        lines[0],
        format!("MNIST: downloading 4 of 4 files into {}", cache.display())
    );
    for (line, name) in lines[1..5].iter().zip([
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]) {
        let size = std::fs::metadata(cache.join(name)).unwrap().len();
        assert_eq!(
            *line,
            format!(
                "MNIST: {name} ({}) from {}{name}: SHA-256 verified",
                data::format_size(size),
                good.url
            )
        );
    }
    assert!(
        lines[5].starts_with(&format!("MNIST: all 4 files in {} (", cache.display())),
        "{text}"
    );

    // Everything is there: no request, no output.
    let mut again = LineProgress(Vec::new());
    let found = MnistFiles::download_into(&cache, &mirrors(&[&good.url]), &mut again).unwrap();
    assert_eq!(found, files);
    assert_eq!(good.requests(), 4);
    assert!(again.0.is_empty());
}

/// A cache that lacks only one file gets only that one.
#[test]
fn a_rerun_fetches_only_the_missing_files() {
    let good = Mirror::start(Fault::None);
    let cache = tempdir("resume");
    MnistFiles::download_into(&cache, &mirrors(&[&good.url]), &mut data::Silent).unwrap();
    std::fs::remove_file(cache.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let requests = good.requests();
    MnistFiles::download_into(&cache, &mirrors(&[&good.url]), &mut data::Silent).unwrap();
    assert_eq!(good.requests(), requests + 1);
    assert_eq!(entries(&cache), STORED);
}

/// A bad mirror alone: the error names the file and what was wrong, and nothing is left in the cache.
fn fails_alone(base: &str, tag: &str) -> String {
    let cache = tempdir(tag);
    let error = MnistFiles::download_into(&cache, &mirrors(&[base]), &mut data::Silent)
        .expect_err("a bad mirror must fail");
    assert_eq!(
        entries(&cache),
        Vec::<String>::new(),
        "left behind by {tag}"
    );
    let SourceError::Download { cache: dir, tried } = &error else {
        panic!("{tag}: not a download error: {error}");
    };
    assert_eq!(dir, &cache);
    assert_eq!(tried.len(), 1, "{tag}: {error}");
    let text = error.to_string();
    assert!(
        text.contains("train-images-idx3-ubyte") && text.contains("--mirror URL"),
        "{text}"
    );
    text
}

/// The bad mirror first, then a good one: every file comes from the good one after the bad one failed.
fn falls_back(bad: &str, tag: &str) -> Vec<String> {
    let good = Mirror::start(Fault::None);
    let cache = tempdir(&format!("{tag}-fallback"));
    let mut failures = Failures::default();
    MnistFiles::download_into(&cache, &mirrors(&[bad, &good.url]), &mut failures).unwrap();
    assert_eq!(entries(&cache), STORED);
    assert_eq!(good.requests(), 4);
    assert_eq!(failures.0.len(), 4, "{:?}", failures.0);
    failures.0
}

#[test]
fn a_corrupted_file_is_refused_naming_file_mirror_and_both_digests() {
    let bad = Mirror::start(Fault::Corrupt);
    let text = fails_alone(&bad.url, "corrupt");
    assert!(
        text.contains(&format!(
            "train-images-idx3-ubyte from mirror {} is not the original MNIST file",
            bad.url
        )) && text
            .contains("expected ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
        "{text}"
    );
    let SourceError::Download { tried, .. } = MnistFiles::download_into(
        &tempdir("corrupt-digest"),
        &mirrors(&[&bad.url]),
        &mut data::Silent,
    )
    .unwrap_err() else {
        panic!("not a download error");
    };
    let DownloadError::Digest {
        actual, expected, ..
    } = &tried[0]
    else {
        panic!("not a digest error: {}", tried[0]);
    };
    assert_ne!(actual, expected);
    assert_eq!(actual.len(), 64);
    let failures = falls_back(&bad.url, "corrupt");
    assert!(
        failures[0].contains("is not the original MNIST file"),
        "{failures:?}"
    );
}

#[test]
fn a_truncated_file_is_refused() {
    let bad = Mirror::start(Fault::Truncate);
    let text = fails_alone(&bad.url, "truncated");
    assert!(
        text.contains(&format!(
            "cannot fetch {}train-images-idx3-ubyte.gz",
            bad.url
        )),
        "{text}"
    );
    falls_back(&bad.url, "truncated");
}

#[test]
fn a_404_is_refused() {
    let bad = Mirror::start(Fault::NotFound);
    let text = fails_alone(&bad.url, "404");
    assert!(
        text.contains(&format!(
            "{}train-images-idx3-ubyte.gz answered HTTP 404",
            bad.url
        )),
        "{text}"
    );
    let failures = falls_back(&bad.url, "404");
    assert!(
        failures[3].contains("t10k-labels-idx1-ubyte.gz answered HTTP 404"),
        "{failures:?}"
    );
}

#[test]
fn a_refused_connection_is_an_error() {
    let bad = refused_url();
    let text = fails_alone(&bad, "refused");
    assert!(
        text.contains(&format!("cannot fetch {bad}train-images-idx3-ubyte.gz")),
        "{text}"
    );
    falls_back(&bad, "refused");
}

#[test]
fn a_mirror_must_be_an_http_url() {
    for bad in [
        "ftp://example.org/mnist/",
        "example.org/mnist",
        "http://",
        "",
    ] {
        let error = Mirrors::new([bad.to_string()], "--mirror").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("(from --mirror) is not a mirror URL"),
            "{error}"
        );
    }
    assert_eq!(
        Mirrors::new(Vec::new(), "--mirror").unwrap(),
        Mirrors::default()
    );
    assert_eq!(
        Mirrors::default().urls()[0],
        "https://ossci-datasets.s3.amazonaws.com/mnist/"
    );
}

/// A temporary file left by a killed download is not taken for data, and is cleaned up once stale.
#[test]
fn a_leftover_partial_file_is_ignored_and_removed_when_stale() {
    let good = Mirror::start(Fault::None);
    let cache = tempdir("stale");
    std::fs::create_dir_all(&cache).unwrap();
    let leftover = cache.join(".train-images-idx3-ubyte.gz.1.partial");
    std::fs::write(&leftover, b"half a file").unwrap();
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&leftover)
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    assert!(MnistFiles::in_dir(&cache).is_err());
    MnistFiles::download_into(&cache, &mirrors(&[&good.url]), &mut data::Silent).unwrap();
    assert_eq!(entries(&cache), STORED);
}

/// An https:// mirror goes through TLS (rustls with its bundled roots): a loopback server that answers
/// in plain HTTP is a TLS error for that URL, not a panic and not a plain-text exchange.
#[test]
fn an_https_mirror_speaks_tls() {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let cache = tempdir("tls");
    let error =
        MnistFiles::download_into(&cache, &mirrors(&[&url]), &mut data::Silent).unwrap_err();
    let text = error.to_string();
    assert!(
        // rustls' words for a server that does not speak TLS.
        text.contains(&format!("cannot fetch {url}train-images-idx3-ubyte.gz: "))
            && text.contains("received corrupt message"),
        "{text}"
    );
    assert_eq!(entries(&cache), Vec::<String>::new());
}

#[test]
fn sizes_read_as_people_write_them() {
    assert_eq!(data::format_size(512), "512 B");
    assert_eq!(data::format_size(28_857), "28.9 kB");
    assert_eq!(data::format_size(9_719_438), "9.7 MB");
}
