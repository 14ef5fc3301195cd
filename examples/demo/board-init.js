// Runs once at every launch in the board's own context. The board's policy lets anyone run
// scripts (anonymous callers included) and any authenticated peer write: a public notice board.
if (load_data('posts/0000-welcome') === null) {
  save_data('posts/0000-welcome', {
    author: CIRCLE_PUBLIC_KEY,
    text: 'Welcome! Read with list_data("posts/"); post with save_data("posts/<id>", { text }) once authenticated; watch new posts live with "circles watch --prefix posts/" or the playground.',
  })
}
'ok'
