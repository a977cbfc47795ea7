// Loaded before RequireJS and the Jupyter widgets HTML manager (see nb_ipywidgets_js in
// _config.yml). The manager's modules fetch their icon fonts from the folder their AMD module
// name resolves to, by default next to the page; point every one of them at the copy this book
// serves (_static/vendor/html-manager/, fetched by `make vendor`), so nothing comes from a CDN.
(function () {
  var assets = new URL("vendor/html-manager", document.currentScript.src).href;
  window.__jupyter_widgets_assets_path__ = assets + "/";
  // RequireJS reads a plain `require` object defined before it loads as its configuration.
  window.require = {
    paths: {
      "@jupyter-widgets/html-manager/dist": assets,
      "@jupyter-widgets": assets,
    },
  };
})();
