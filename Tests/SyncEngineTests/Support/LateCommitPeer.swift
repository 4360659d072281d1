import FHIRClient
import FHIRJSON
import FHIRModel
import Synchronization
import SyncEngine

/// A real peer seen through a window that hides chosen records from searches until released: what a
/// server whose write transactions commit out of stamp order looks like (a version stamped early that
/// becomes visible after later ones). Everything else goes to the wrapped client unchanged.
final class LateCommitPeer: SyncPeerClient {
    private let peer: FHIRClient
    private let hidden = Mutex<Set<String>>([])

    init(_ peer: FHIRClient) { self.peer = peer }

    /// Hides the record with `id` from searches.
    func hide(_ id: String) { hidden.withLock { _ = $0.insert(id) } }

    /// Lets every hidden record be found again: their late commits have landed.
    func releaseAll() { hidden.withLock { $0.removeAll() } }

    private func visible(_ page: RawBundlePage) -> RawBundlePage {
        let ids = hidden.withLock { $0 }
        var page = page
        page.resources.removeAll { $0.id.map(ids.contains) ?? false }
        return page
    }

    private func visible(_ page: BundlePage) -> BundlePage {
        let ids = hidden.withLock { $0 }
        var page = page
        page.resources.removeAll { $0["id"]?.stringValue.map(ids.contains) ?? false }
        return page
    }

    func requireR4() async throws(FHIRClientError) -> PeerCapabilities { try await peer.requireR4() }
    func search(_ type: ResourceType, _ parameters: [(String, String)]) async throws(FHIRClientError) -> BundlePage {
        visible(try await peer.search(type, parameters))
    }
    func next(_ link: String, expecting bundleType: String) async throws(FHIRClientError) -> BundlePage {
        visible(try await peer.next(link, expecting: bundleType))
    }
    func searchPage(_ type: ResourceType, _ parameters: [(String, String)]) async throws(FHIRClientError) -> RawBundlePage {
        visible(try await peer.searchPage(type, parameters))
    }
    func nextPage(_ link: String) async throws(FHIRClientError) -> RawBundlePage { visible(try await peer.nextPage(link)) }
    func read(_ type: ResourceType, id: String) async throws(FHIRClientError) -> FetchedResource? { try await peer.read(type, id: id) }
    func readCurrent(_ type: ResourceType, id: String) async throws(FHIRClientError) -> ReadOutcome {
        try await peer.readCurrent(type, id: id)
    }
    func create(_ type: ResourceType, body: [UInt8], ifNoneExist: String?, requestID: String) async throws(FHIRClientError)
        -> WriteResult
    {
        try await peer.create(type, body: body, ifNoneExist: ifNoneExist, requestID: requestID)
    }
    func update(_ type: ResourceType, id: String, body: [UInt8], ifMatchVersion: String?, requestID: String)
        async throws(FHIRClientError) -> WriteResult
    {
        try await peer.update(type, id: id, body: body, ifMatchVersion: ifMatchVersion, requestID: requestID)
    }
    func batch(_ entries: [BatchEntry], requestID: String) async throws(FHIRClientError) -> [BatchEntryResult] {
        try await peer.batch(entries, requestID: requestID)
    }
    func transaction(_ entries: [BatchEntry], requestID: String) async throws(FHIRClientError) -> [BatchEntryResult] {
        try await peer.transaction(entries, requestID: requestID)
    }
}
