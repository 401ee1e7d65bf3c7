// Starts GraphiQL against this service: queries and mutations over POST /graphql
// (with the session cookie), subscriptions over /graphql/ws.
(function () {
  var http = new URL('/graphql', window.location.href);
  var ws = new URL('/graphql/ws', window.location.href);
  ws.protocol = http.protocol === 'https:' ? 'wss:' : 'ws:';
  var fetcher = GraphiQL.createFetcher({
    url: http.href,
    subscriptionUrl: ws.href,
    wsClient: graphqlWs.createClient({ url: ws.href, lazy: true }),
  });
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(React.createElement(GraphiQL, {
    fetcher: fetcher,
    defaultQuery: '{\n  websites {\n    id\n    name\n    status\n    lastCheck { responseTimeMs checkedAt }\n  }\n}\n',
  }));
})();
